import { expect, test, type Page } from "@playwright/test";
import { failOnConsoleErrors, signIn, signUp, uniqueEmail, waitForHydration } from "./helpers";

async function signOut(page: Page) {
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page.getByRole("link", { name: "Sign in" }).first()).toBeVisible();
}

test("an owner shares a pet, the vet writes and edits a record, the owner reads it and its history", async ({ page }) => {
  const errors = failOnConsoleErrors(page);
  const email = uniqueEmail("owner");
  const petName = `Nala ${Date.now() % 100000}`;

  // The owner registers and adds a pet.
  await signUp(page, "Olga Owner", email, "correct horse battery");

  await page.getByRole("link", { name: "My pets" }).first().click();
  await page.getByRole("link", { name: "Add a pet" }).click();
  await page.getByLabel("Name").fill(petName);
  await page.getByLabel("Species").fill("cat");
  await page.getByLabel(/Microchip number/).fill("276 098 106 599 001");
  await page.getByRole("button", { name: "Add pet" }).click();
  await expect(page.getByTestId("pet-name")).toHaveText(petName);
  await expect(page.getByTestId("microchip")).toHaveText("276098106599001");

  // It is shared with the demo clinic.
  await page.getByLabel("Share with").selectOption({ label: "Riverside Veterinary Clinic" });
  await page.getByRole("button", { name: "Share", exact: true }).click();
  await expect(page.getByTestId("shares")).toContainText("Riverside Veterinary Clinic");
  await signOut(page);

  // The vet finds the pet by its microchip and writes a record.
  await signIn(page, "vet@pawfile.test", "vet-demo-pass");
  await page.getByRole("link", { name: "Patients" }).first().click();
  await page.getByLabel(/Search by pet name/).fill("2760981065990");
  await page.getByRole("main").getByRole("button", { name: "Search" }).click();
  await page.getByRole("link", { name: petName }).click();
  await expect(page.getByTestId("pet-name")).toHaveText(petName);
  await page.getByRole("link", { name: "New record" }).click();
  await page.getByLabel("Visit date").fill("2026-11-20");
  await page.getByLabel("Kind").selectOption("vaccination");
  await page.getByLabel("Title").fill("Rabies vaccination");
  await page.getByLabel("Notes").fill("Nobivac Rabies, left shoulder.");
  await page.getByRole("button", { name: "Save record" }).click();
  await expect(page.getByTestId("record-title")).toHaveText("Rabies vaccination");
  await expect(page.getByTestId("revision-count")).toHaveText("No earlier versions.");

  // ... and edits it.
  await page.getByRole("link", { name: "Edit" }).click();
  await page.getByLabel("Notes").fill("Nobivac Rabies, left shoulder. Next due November 2027.");
  await page.getByRole("button", { name: "Save" }).click();
  await expect(page.getByTestId("record-body")).toContainText("Next due November 2027");
  await expect(page.getByTestId("revision-count")).toHaveText("1 earlier version.");
  await signOut(page);

  // The owner reads the record, its earlier version, and who accessed the pet.
  await signIn(page, email, "correct horse battery");
  await page.getByRole("link", { name: "My pets" }).first().click();
  await page.getByRole("link", { name: petName }).click();
  await page.getByRole("link", { name: "Rabies vaccination" }).click();
  await expect(page.getByTestId("record-body")).toContainText("Next due November 2027");
  await expect(page.getByRole("link", { name: "Edit" })).toHaveCount(0);
  const revision = page.getByTestId("revision");
  await expect(revision).toHaveCount(1);
  await revision.locator("summary").click();
  await expect(revision).toContainText("Version 1 — by Dr. Victor Vet");
  await expect(revision).toContainText("Nobivac Rabies, left shoulder.");

  await page.getByRole("link", { name: `← ${petName}` }).click();
  await page.getByRole("link", { name: /See who opened/ }).click();
  const history = page.getByTestId("history");
  await expect(history).toContainText("Dr. Victor Vet (Riverside Veterinary Clinic)");
  await expect(history).toContainText("edited a medical record");
  await expect(history).toContainText("viewed the pet");

  expect(errors).toEqual([]);
});
