import AxeBuilder from "@axe-core/playwright";
import { expect, test, type Browser, type Page } from "@playwright/test";
import path from "node:path";
import { failOnConsoleErrors, overflowing, signIn, signUp, smallTargets, uniqueEmail, waitForHydration } from "./helpers";

// Each role's pages, on a desktop and on a 390 px phone, in one signed-in browser per role: what the home
// shows, that nothing runs out of the phone's screen, that controls are big enough for a finger, and that
// axe-core finds no serious or critical accessibility problem. Screenshots of each home are saved.

// Each role's test visits every page of the role twice, with axe each time: more than the default minute.
test.describe.configure({ timeout: 240_000 });

const desktop = { width: 1280, height: 900 };
const phone = { width: 390, height: 844 };
// Outside test-results (which each run empties first), so the last run's pictures stay to be looked at.
const shots = process.env.PAWFILE_SCREENSHOTS ?? path.join(__dirname, "..", "screenshots", "latest");

/** Opens `url`, then checks it on both screens; the home page is photographed as `shot`. */
async function checkPage(page: Page, url: string, shot?: string) {
  for (const [screen, size] of [["desktop", desktop], ["phone", phone]] as const) {
    await page.setViewportSize(size);
    await page.goto(url);
    await waitForHydration(page);
    const title = await page.title();
    expect(title, `${url} has its own title`).not.toBe("Pawfile");
    const axe = await new AxeBuilder({ page }).analyze();
    const serious = axe.violations
      .filter((violation) => violation.impact === "serious" || violation.impact === "critical")
      .map((violation) => `${violation.id}: ${violation.help} (${violation.nodes.map((node) => node.target.join(" ")).slice(0, 3).join(", ")})`);
    expect(serious, `axe on ${url} (${screen})`).toEqual([]);
    if (screen === "phone") {
      expect(await overflowing(page), `${url} on a phone`).toEqual([]);
      expect(await smallTargets(page), `${url} on a phone`).toEqual([]);
      // The menu opens without JavaScript (a <details>), and its links fit too.
      const menu = page.locator("details.phone-menu > summary");
      await menu.click();
      await expect(page.locator("details.phone-menu nav a").first()).toBeVisible();
      expect(await overflowing(page), `${url} on a phone, menu open`).toEqual([]);
      await menu.click();
    }
    if (shot) {
      await page.screenshot({ path: path.join(shots, `${shot}-${screen}.png`), fullPage: true });
    }
  }
  await page.setViewportSize(desktop);
}

/** Prints `url` as on A4 paper: only the page's content, nothing cut off; the PDF is saved as `name`. */
async function checkPrint(page: Page, url: string, name: string) {
  // 180 mm of printable width at 96 dpi.
  await page.setViewportSize({ width: 680, height: 960 });
  await page.goto(url);
  await waitForHydration(page);
  await page.emulateMedia({ media: "print" });
  await expect(page.locator("header.site-header")).toBeHidden();
  await expect(page.locator("main h1").first()).toBeVisible();
  expect(await page.locator("main button:visible, main form:visible, main .button:visible").count(), `${url} prints no controls`).toBe(0);
  expect(await overflowing(page), `${url} on A4`).toEqual([]);
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
  await page.pdf({ path: path.join(shots, `${name}.pdf`), format: "A4" });
  await page.emulateMedia({ media: null });
  await page.setViewportSize(desktop);
}

async function rolePage(browser: Browser): Promise<[Page, string[]]> {
  const context = await browser.newContext({ viewport: desktop });
  const page = await context.newPage();
  return [page, failOnConsoleErrors(page)];
}

test("signed-out pages", async ({ browser }) => {
  const [page, errors] = await rolePage(browser);
  for (const url of ["/", "/login", "/register", "/forgot-password", "/verify-email?token=x", "/reset-password?token=x", "/accept-invitation?token=x"]) {
    await checkPage(page, url, url === "/" ? "visitor-home" : undefined);
  }
  // No search box for visitors.
  await expect(page.locator("#header-q")).toHaveCount(0);
  expect(errors).toEqual([]);
  // The page for a wrong address too (the browser logs its 404 status, and nothing else).
  await checkPage(page, "/no-such-page");
  expect(errors.filter((error) => !error.includes("status of 404"))).toEqual([]);
});

test("the owner's home, search and pages", async ({ browser }) => {
  const [page, errors] = await rolePage(browser);
  await signIn(page, "owner@pawfile.test", "owner-demo-pass");
  await expect(page).toHaveTitle("Your pets · Pawfile");

  // Every pet as a card, with its counts and clinics.
  const cards = page.getByTestId("pet-card");
  const biscuit = cards.filter({ hasText: "Biscuit" });
  await expect(biscuit.getByTestId("pet-counts")).toHaveText(/^2 records · \d+ documents?$/);
  await expect(biscuit).toContainText("dog · Beagle · ");
  await expect(biscuit).toContainText("Shared with Riverside Veterinary Clinic");
  await expect(biscuit).toContainText("Last visit 2 Sep 2025");
  const pepper = cards.filter({ hasText: "Pepper" });
  await expect(pepper).toContainText("Not shared with a clinic");
  await expect(pepper).toContainText("No visits yet");
  await expect(page.getByLabel("Claim code")).toBeVisible();
  const petUrl = await biscuit.getByRole("link", { name: "Biscuit" }).getAttribute("href");

  // One tap adds a document: the picker's choice is sent at once, and the photo shows on the card.
  const documentsBefore = Number((await pepper.getByTestId("pet-counts").innerText()).match(/(\d+) documents?/)![1]);
  await expect(pepper.locator("label.button")).toHaveText(/Add a document\s+for Pepper/);
  await pepper.locator("input[type=file]").setInputFiles(path.join(__dirname, "..", "fixtures", "paw-photo.png"));
  await expect(page.getByTestId("flash")).toContainText("paw-photo.png");
  await expect(pepper.getByTestId("pet-counts")).toContainText(`${documentsBefore + 1} document`);
  await expect(async () => {
    await page.reload();
    await expect(pepper.locator(".pet-photo img")).toHaveCount(1, { timeout: 1000 });
  }).toPass({ timeout: 20_000 });
  await waitForHydration(page);

  // A second photo from the pet's page; the owner picks which one the card shows.
  const pepperUrl = (await pepper.getByRole("link", { name: "Pepper" }).getAttribute("href"))!;
  await page.goto(pepperUrl);
  await waitForHydration(page);
  await page.locator("#upload-files").setInputFiles(path.join(__dirname, "..", "fixtures", "paw-photo.png"));
  await page.getByRole("main").getByRole("button", { name: "Upload" }).click();
  await expect(page.getByTestId("transfer-done")).toHaveCount(1);
  const documents = page.getByTestId("document");
  await expect(async () => {
    await page.reload();
    await expect(page.getByTestId("thumbnail")).toHaveCount(await documents.count(), { timeout: 1000 });
  }).toPass({ timeout: 20_000 });
  await page.goto("/");
  const shown = await pepper.locator(".pet-photo img").getAttribute("src");
  await page.goto(pepperUrl);
  await waitForHydration(page);
  const other = documents.filter({ has: page.locator(`img[data-testid=thumbnail]:not([src="${shown}"])`) }).first();
  const chosen = await other.getByTestId("thumbnail").getAttribute("src");
  await other.getByRole("button", { name: "Use as the pet's photo" }).click();
  await expect(documents.filter({ has: page.locator(`img[src="${chosen}"]`) }).getByTestId("card-photo")).toBeVisible();
  await expect(page.getByTestId("card-photo")).toHaveCount(1);
  await page.goto("/");
  await expect(pepper.locator(".pet-photo img")).toHaveAttribute("src", chosen!);

  // Search from the header: a word of a record's body, marked in the passage.
  await page.locator("#header-q").fill("drops");
  await page.locator("#header-q").press("Enter");
  await expect(page).toHaveURL(/\/search\?q=drops/);
  const hits = page.getByTestId("hit");
  await expect(hits).toHaveCount(1);
  await expect(hits.first()).toContainText("Itchy ears");
  await expect(hits.first().locator("mark")).toHaveText("drops");
  const recordUrl = await hits.first().getByRole("link", { name: "Itchy ears" }).getAttribute("href");

  for (const url of ["/", "/pets", petUrl!, `${petUrl}/edit`, `${petUrl}/history`, "/pets/new", recordUrl!, "/search?q=drops", "/account"]) {
    await checkPage(page, url, url === "/" ? "owner-home" : undefined);
  }
  expect(errors).toEqual([]);
});

test("another owner's search finds nothing of the demo owner's pets", async ({ page }) => {
  const errors = failOnConsoleErrors(page);
  await signUp(page, "Stranger Owner", uniqueEmail("stranger"), "correct horse battery");
  await expect(page.getByTestId("pet-card")).toHaveCount(0);
  await page.goto("/search?q=drops");
  await waitForHydration(page);
  await expect(page.getByTestId("no-hits")).toHaveText("No record matches.");
  await expect(page.getByText("Itchy ears")).toHaveCount(0);
  expect(errors).toEqual([]);
});

test("the vet's home, search and pages", async ({ browser }) => {
  const [page, errors] = await rolePage(browser);
  await signIn(page, "vet@pawfile.test", "vet-demo-pass");
  await expect(page).toHaveTitle("Riverside Veterinary Clinic · Pawfile");
  await expect(page.getByRole("link", { name: "Register a walk-in" })).toBeVisible();

  // Open a patient: it is first among the recently opened ones.
  await page.getByLabel("Pet name, owner name or e-mail, or microchip").fill("Miso");
  await page.getByRole("main").getByRole("button", { name: "Search" }).click();
  await expect(page).toHaveURL(/\/clinic\?q=Miso/);
  await page.getByRole("link", { name: "Miso" }).click();
  await expect(page.getByRole("heading", { name: "Miso" })).toBeVisible();
  const petUrl = new URL(page.url()).pathname;
  await page.goto("/");
  await expect(page.getByTestId("recent-patients").getByRole("link").first()).toHaveText("Miso");

  // The clinic's records are found by a word of their text.
  await page.goto("/search?q=booster");
  await waitForHydration(page);
  await expect(page.getByTestId("hit")).toHaveCount(1);
  await expect(page.getByTestId("hit").locator("mark")).toHaveText("booster");
  const recordUrl = await page.getByTestId("hit").getByRole("link", { name: "Annual vaccination" }).getAttribute("href");
  const biscuitUrl = await page.getByTestId("hit").getByRole("link", { name: "Biscuit" }).getAttribute("href");

  for (const url of ["/", "/clinic", "/clinic/walk-in", petUrl, `${petUrl}/records/new`, recordUrl!, `${recordUrl}/edit`, "/search?q=booster", "/account"]) {
    await checkPage(page, url, url === "/" ? "vet-home" : undefined);
  }
  // Vets print a record and a patient's record list.
  await checkPrint(page, recordUrl!, "record-print");
  await checkPrint(page, biscuitUrl!, "pet-print");
  expect(errors).toEqual([]);
});

test("the admin's home and pages", async ({ browser }) => {
  const [page, errors] = await rolePage(browser);
  await signIn(page, "admin@pawfile.test", "admin-demo-pass");
  await expect(page).toHaveTitle("System overview · Pawfile");
  await expect(page.getByTestId("count-clinics")).toHaveText(/^[1-9]\d*$/);
  await expect(page.getByTestId("count-owners")).toHaveText(/^[1-9]\d*$/);
  await expect(page.getByTestId("stores")).toContainText("reachable");
  await expect(page.getByTestId("latest-events").locator("tbody tr").first()).toBeVisible();
  // Nothing medical, and no record search, for an admin without a clinic.
  const text = await page.locator("main").innerText();
  for (const medical of ["Biscuit", "Miso", "Itchy ears", "Annual vaccination", "Otitis"]) {
    expect(text).not.toContain(medical);
  }
  await expect(page.locator("#header-q")).toHaveCount(0);

  for (const url of ["/", "/admin", "/admin/dashboard", "/admin/users", "/admin/audit", "/admin/backups", "/account"]) {
    await checkPage(page, url, url === "/" ? "admin-home" : url === "/admin/dashboard" ? "admin-dashboard" : undefined);
  }
  // The dashboard draws today's recorded storage (the server records it at start-up).
  await page.goto("/admin/dashboard");
  await expect(page.getByTestId("storage-chart").locator("svg polyline").first()).toBeAttached();
  await expect(page.getByTestId("integrity-status")).toBeVisible();
  expect(errors).toEqual([]);
});
