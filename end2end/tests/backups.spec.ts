import { expect, test } from "@playwright/test";
import { failOnConsoleErrors, signIn, waitForHydration } from "./helpers";

// The browser-test server runs with PAWFILE_BACKUP_TEST_PACE, so a run lasts long enough to be watched.
test("the admin backs up now, watches the progress and sees the run complete in the history", async ({ page }) => {
  const errors = failOnConsoleErrors(page);
  await signIn(page, "admin@pawfile.test", "admin-demo-pass");

  await page.goto("/admin");
  await page.getByRole("link", { name: "Backups" }).click();
  await expect(page.getByRole("heading", { name: "Backups", level: 1 })).toBeVisible();
  await waitForHydration(page);
  await expect(page).toHaveTitle("Backups · Pawfile");

  await page.getByTestId("backup-now").click();
  const progress = page.getByTestId("backup-progress");
  await expect(progress).toBeVisible();
  await expect(progress.getByRole("status")).toContainText(/Copying the database|files/);
  const newest = page.getByTestId("backup-history").locator("tbody tr").first();
  await expect(newest).toHaveAttribute("data-status", "complete", { timeout: 60_000 });
  await expect(progress).toHaveCount(0);
  await expect(newest).toContainText("admin@pawfile.test");
  await expect(page.getByTestId("last-complete")).not.toHaveText("none yet");
  await expect(page.getByTestId("backup-alarm")).toHaveCount(0);

  // A phone sees the same page without anything cut off.
  await page.setViewportSize({ width: 390, height: 844 });
  await expect(page.getByTestId("backup-now")).toBeVisible();
  expect(errors).toEqual([]);
});
