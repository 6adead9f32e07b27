import { defineConfig } from "@playwright/test";
import base from "./playwright.config";

// The README's pictures (scripts/pictures), not a test run: see pictures/readme.spec.ts.
export default defineConfig({ ...base, testDir: "./pictures" });
