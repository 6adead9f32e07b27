import { expect, type Page } from "@playwright/test";

/** Fails the test on any console error or uncaught exception (CSP violations, hydration panics). */
export function failOnConsoleErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  page.on("pageerror", (error) => errors.push(error.message));
  return errors;
}

/** Waits until the wasm has loaded and taken over the server-rendered page. */
export async function waitForHydration(page: Page) {
  await expect(page.locator("main[data-hydrated=true]")).toHaveCount(1);
}

/** A unique e-mail address for this run. */
export function uniqueEmail(prefix: string): string {
  return `${prefix}-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.org`;
}
