import { expect, test, type Page } from "@playwright/test";
import path from "node:path";
import { signIn, waitForHydration } from "../tests/helpers";

// The README's pictures, taken from the demo data alone (scripts/pictures seeds a fresh database for
// them): what a newcomer who runs `scripts/run` and signs in with a demo account sees.

const shots = path.join(__dirname, "..", "screenshots");
const desktop = { width: 1280, height: 900 };
const phone = { width: 390, height: 844 };

async function photograph(page: Page, url: string, name: string, size: { width: number; height: number }) {
  await page.setViewportSize(size);
  await page.goto(url);
  await waitForHydration(page);
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

test("the owner's home on a phone, and a pet's page with its documents", async ({ page }) => {
  await signIn(page, "owner@pawfile.test", "owner-demo-pass");
  const biscuit = page.getByTestId("pet-card").filter({ hasText: "Biscuit" });
  const petUrl = (await biscuit.getByRole("link", { name: "Biscuit" }).getAttribute("href"))!;
  // The demo photos' thumbnails are made by a background task after the seed: wait for them.
  await expect(async () => {
    await page.goto(petUrl);
    await expect(page.getByTestId("thumbnail").first()).toBeVisible({ timeout: 1000 });
  }).toPass({ timeout: 30_000 });
  await photograph(page, "/", "owner-home-phone", phone);
  await photograph(page, petUrl, "pet-page-desktop", desktop);
});

test("the vet's home, once they opened two patients", async ({ page }) => {
  await signIn(page, "vet@pawfile.test", "vet-demo-pass");
  for (const name of ["Miso", "Biscuit"]) {
    await page.getByLabel("Pet name, owner name or e-mail, or microchip").fill(name);
    await page.getByRole("main").getByRole("button", { name: "Search" }).click();
    await page.getByRole("link", { name }).click();
    await expect(page.getByRole("heading", { name })).toBeVisible();
    await page.goto("/");
  }
  await expect(page.getByTestId("recent-patients").getByRole("link").first()).toHaveText("Biscuit");
  await photograph(page, "/", "vet-home-desktop", desktop);
});
