import { expect, test } from "@playwright/test";
import path from "node:path";
import { failOnConsoleErrors, waitForHydration } from "./helpers";

const fixtures = path.join(__dirname, "..", "fixtures");

test("an owner uploads two files with progress, sees the thumbnail, previews and downloads", async ({ page }) => {
  const errors = failOnConsoleErrors(page);
  await page.goto("/login");
  await waitForHydration(page);
  await page.getByLabel("E-mail address").fill("owner@pawfile.test");
  await page.locator("#password").fill("owner-demo-pass");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByTestId("welcome")).toBeVisible();

  // A pet of its own, so the test can run again on the same database.
  const petName = `Docs ${Date.now() % 1000000}`;
  await page.getByRole("link", { name: "My pets" }).first().click();
  await page.getByRole("link", { name: "Add a pet" }).click();
  await page.getByLabel("Name").fill(petName);
  await page.getByLabel("Species").fill("cat");
  await page.getByRole("button", { name: "Add pet" }).click();
  await expect(page.getByTestId("pet-name")).toHaveText(petName);

  // The limit and accepted types are shown before choosing files.
  await expect(page.getByTestId("upload-rules")).toContainText("per file. Accepted: PDF, JPEG, PNG");

  // Two files at once: each gets its own progress bar.
  await page.locator("#upload-category").selectOption("lab_result");
  await page.locator("#upload-files").setInputFiles([
    path.join(fixtures, "paw-photo.png"),
    path.join(fixtures, "lab-result.pdf"),
  ]);
  await page.getByRole("button", { name: "Upload" }).click();
  const transfers = page.getByTestId("transfers").locator("li");
  await expect(transfers).toHaveCount(2);
  await expect(page.getByTestId("progress")).toHaveCount(2);
  await expect(page.getByTestId("transfer-done")).toHaveCount(2);
  // Screen readers are told once, not at every percent.
  await expect(page.getByTestId("upload-status")).toHaveText("2 files uploaded.");
  await expect(page.getByTestId("upload-status")).toHaveAttribute("role", "status");
  await expect(page.getByTestId("progress").first()).toHaveAttribute("value", "100");

  // Both are listed; the photo gets a thumbnail from the server.
  const documents = page.getByTestId("document");
  await expect(documents.filter({ hasText: "paw-photo.png" })).toHaveCount(1);
  await expect(documents.filter({ hasText: "lab-result.pdf" })).toHaveCount(1);
  await expect(async () => {
    await page.reload();
    await expect(page.getByTestId("thumbnail").first()).toBeVisible({ timeout: 1000 });
  }).toPass({ timeout: 20_000 });
  const thumbnail = page.getByTestId("thumbnail").first();
  await expect.poll(() => thumbnail.evaluate((img: HTMLImageElement) => img.naturalWidth)).toBeGreaterThan(0);

  // The image preview opens in a new tab, inline, sandboxed.
  const photo = documents.filter({ hasText: "paw-photo.png" });
  const [preview] = await Promise.all([
    page.waitForEvent("popup"),
    photo.getByRole("link", { name: "Preview" }).click(),
  ]);
  const previewResponse = await preview.waitForLoadState().then(() => preview.evaluate(() => document.contentType));
  expect(previewResponse).toBe("image/png");
  await preview.close();

  // Download keeps the name.
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    photo.getByRole("link", { name: "paw-photo.png" }).click(),
  ]);
  expect(download.suggestedFilename()).toBe("paw-photo.png");

  // Headless Chromium downloads PDFs instead of showing them: check the preview headers over HTTP.
  const pdfPreview = documents.filter({ hasText: "lab-result.pdf" }).getByRole("link", { name: "Preview" });
  const href = await pdfPreview.getAttribute("href");
  const response = await page.request.get(href!);
  expect(response.status()).toBe(200);
  const headers = response.headers();
  expect(headers["content-type"]).toBe("application/pdf");
  expect(headers["content-disposition"]).toMatch(/^inline; filename="lab-result.pdf"/);
  expect(headers["x-content-type-options"]).toBe("nosniff");
  expect(headers["cache-control"]).toBe("no-store");
  expect(headers["content-security-policy"]).not.toContain("sandbox");

  // Filter by category. The page was reloaded above: a click before the wasm takes over submits the
  // form natively, and a choice made while that reload is on its way would be lost, so wait for both.
  await waitForHydration(page);
  await page.locator("#category-filter").selectOption("lab_result");
  await page.getByRole("button", { name: "Show" }).click();
  await expect(page).toHaveURL(/category=lab_result/);
  await expect(documents).toHaveCount(2);
  await expect(page.locator("#category-filter")).toHaveValue("lab_result");
  await page.locator("#category-filter").selectOption("invoice");
  await page.getByRole("button", { name: "Show" }).click();
  await expect(page).toHaveURL(/category=invoice/);
  await expect(page.getByText("No documents here.")).toBeVisible();

  expect(errors).toEqual([]);
});
