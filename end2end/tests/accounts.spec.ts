import { expect, test } from "@playwright/test";
import { failOnConsoleErrors, mailedLink, signIn, signUp, totpCode, uniqueEmail, waitForHydration } from "./helpers";

test("an owner registers, confirms the mailed link, signs out, signs in again and sees the home page", async ({ page }) => {
  const errors = failOnConsoleErrors(page);
  const email = uniqueEmail("olivia");
  const password = "correct horse battery";

  await page.goto("/register");
  await waitForHydration(page);

  // Hydration proof: the Show button only works once the wasm runs.
  const passwordInput = page.locator("#password");
  await passwordInput.fill(password);
  await expect(passwordInput).toHaveAttribute("type", "password");
  await page.getByRole("button", { name: "Show" }).click();
  await expect(passwordInput).toHaveAttribute("type", "text");
  await page.getByRole("button", { name: "Hide" }).click();
  await expect(passwordInput).toHaveAttribute("type", "password");

  await page.getByLabel("Your name").fill("Olivia Owner");
  await page.getByLabel("E-mail address").fill(email);
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page.getByTestId("sent")).toContainText("Check your e-mail");
  await expect(page.getByRole("button", { name: "Create account" })).toBeHidden();

  await page.goto(await mailedLink(email.toLowerCase(), "/verify-email"));
  await waitForHydration(page);
  // Whoever opens the link must know the password chosen at sign-up: a wrong one creates nothing.
  await page.getByLabel("Your password").fill("not the password at all");
  await page.getByRole("button", { name: "Confirm and sign in" }).click();
  await expect(page.getByRole("alert")).toContainText("not the password chosen when signing up");
  await page.getByLabel("Your password").fill(password);
  await page.getByRole("button", { name: "Confirm and sign in" }).click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByTestId("welcome")).toHaveText("Welcome, Olivia Owner");
  await expect(page.getByTestId("roles")).toContainText("Pet owner");
  await expect(page.getByTestId("signed-in-as")).toHaveText("Olivia Owner");

  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page.getByRole("link", { name: "Sign in" }).first()).toBeVisible();
  await expect(page.getByTestId("signed-in-as")).toHaveCount(0);

  await page.getByRole("link", { name: "Sign in" }).first().click();
  await expect(page).toHaveURL(/\/login$/);
  await waitForHydration(page);
  await page.getByLabel("E-mail address").fill(email);
  await page.locator("#password").fill("not the password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert")).toHaveText("Wrong e-mail address or password.");

  await page.locator("#password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByTestId("welcome")).toHaveText("Welcome, Olivia Owner");
  await expect(page.getByTestId("email")).toHaveText(email.toLowerCase());

  // A reload renders the signed-in page on the server from the session cookie.
  await page.reload();
  await expect(page.getByTestId("welcome")).toHaveText("Welcome, Olivia Owner");

  // The browser reports a console error for the deliberate 401 and 422 (the wrong password on the
  // confirmation page); anything else is a defect.
  expect(errors.filter((e) => !e.includes("401") && !e.includes("422"))).toEqual([]);
});

test("the demo vet signs in and sees their clinic", async ({ page }) => {
  const errors = failOnConsoleErrors(page);
  // Without the second factor the demo vet is asked for it.
  await page.goto("/login");
  await waitForHydration(page);
  await page.getByLabel("E-mail address").fill("vet@pawfile.test");
  await page.locator("#password").fill("vet-demo-pass");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.locator("#code-error")).toContainText("code from your authenticator app");
  await signIn(page, "vet@pawfile.test", "vet-demo-pass");

  await expect(page.getByTestId("welcome")).toHaveText("Welcome, Dr. Victor Vet");
  await expect(page.getByTestId("roles")).toContainText("Clinic staff");
  await expect(page.locator(".greeting")).toContainText("at Riverside Veterinary Clinic");
  await expect(page.getByRole("heading", { name: "Find a patient" })).toBeVisible();
  // The browser logs the deliberate 422 (no code yet); anything else is a defect.
  expect(errors.filter((e) => !e.includes("422"))).toEqual([]);
});

test("forms work without JavaScript", async ({ browser }) => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto("/login");
  await page.getByLabel("E-mail address").fill("owner@pawfile.test");
  await page.locator("#password").fill("wrong password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert")).toHaveText("Wrong e-mail address or password.");

  // The server answered with a redirect back to the form, which is rendered afresh.
  await page.getByLabel("E-mail address").fill("owner@pawfile.test");
  await page.locator("#password").fill("owner-demo-pass");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByTestId("welcome")).toHaveText("Welcome, Olivia Owner");
  // No wasm, so no Show button: the plain form is complete without it.
  await expect(page.getByRole("button", { name: "Show" })).toHaveCount(0);
  await context.close();
});

test("signing up works without JavaScript", async ({ browser }) => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  const email = uniqueEmail("plain");
  await page.goto("/register");
  await page.getByLabel("Your name").fill("Paula Plain");
  await page.getByLabel("E-mail address").fill(email);
  await page.locator("#password").fill("correct horse battery");
  await page.getByRole("button", { name: "Create account" }).click();
  // Sent to the sign-in page, with the message shown there.
  await expect(page).toHaveURL(/\/login$/);
  await expect(page.getByTestId("flash")).toContainText("Check your e-mail");

  await page.goto(await mailedLink(email.toLowerCase(), "/verify-email"));
  await page.getByLabel("Your password").fill("correct horse battery");
  await page.getByRole("button", { name: "Confirm and sign in" }).click();
  await expect(page.getByTestId("welcome")).toHaveText("Welcome, Paula Plain");
  await context.close();
});

test("the admin sees the storage state and the same-machine backup warning", async ({ page }) => {
  await signIn(page, "admin@pawfile.test", "admin-demo-pass");
  await expect(page.getByRole("heading", { name: "The system at a glance" })).toBeVisible();
  await expect(page.getByText("Backups are stored on this machine")).toBeVisible();
  await expect(page.locator("td.ok")).toHaveCount(2);
});

test("an owner who forgot their password gets a link and chooses a new one", async ({ page }) => {
  const errors = failOnConsoleErrors(page);
  const email = uniqueEmail("forgetful");
  await signUp(page, "Fred Forgetful", email, "correct horse battery");
  await page.getByRole("button", { name: "Sign out" }).click();

  await page.goto("/login");
  await waitForHydration(page);
  await page.getByRole("link", { name: "Forgot your password?" }).click();
  await expect(page).toHaveURL(/\/forgot-password$/);
  await page.getByLabel("E-mail address").fill(email);
  await page.getByRole("button", { name: "Mail me a link" }).click();
  await expect(page.getByTestId("sent")).toContainText("If an account uses this address");

  await page.goto(await mailedLink(email.toLowerCase(), "/reset-password"));
  await waitForHydration(page);
  await page.locator("#new_password").fill("a brand new passphrase");
  await page.getByRole("button", { name: "Set the new password" }).click();
  await expect(page.getByTestId("sent")).toContainText("Your password is changed");
  await page.getByRole("link", { name: "Sign in" }).last().click();
  await waitForHydration(page);
  await page.getByLabel("E-mail address").fill(email);
  await page.locator("#password").fill("a brand new passphrase");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByTestId("welcome")).toHaveText("Welcome, Fred Forgetful");
  expect(errors).toEqual([]);
});

test("an admin invites a vet, who chooses their own password from the mailed link", async ({ browser }) => {
  const adminContext = await browser.newContext();
  const admin = await adminContext.newPage();
  const errors = failOnConsoleErrors(admin);
  await signIn(admin, "admin@pawfile.test", "admin-demo-pass");
  await admin.goto("/admin");
  await waitForHydration(admin);
  const email = uniqueEmail("nina");
  await admin.getByLabel("Clinic", { exact: true }).selectOption({ label: "Riverside Veterinary Clinic" });
  await admin.getByLabel("Name", { exact: true }).fill("Nina Nurse");
  await admin.getByLabel("E-mail address").fill(email);
  await admin.getByRole("button", { name: "Send the invitation" }).click();
  await expect(admin.getByTestId("invited")).toHaveText("Invitation sent.");
  await expect(admin.getByText("Initial password")).toHaveCount(0);
  await adminContext.close();

  const context = await browser.newContext();
  const page = await context.newPage();
  errors.push(...failOnConsoleErrors(page));
  await page.goto(await mailedLink(email.toLowerCase(), "/accept-invitation"));
  await waitForHydration(page);
  await expect(page.getByTestId("invitation")).toContainText("staff of Riverside Veterinary Clinic");
  await page.locator("#password").fill("nina's own passphrase");
  await page.getByRole("button", { name: "Set my password and sign in" }).click();
  // Staff must set up two-factor sign-in before anything else: they land on their account page.
  await expect(page).toHaveURL(/\/account#two-factor$/);
  await expect(page.getByTestId("two-factor")).toContainText("Your role requires it");
  await page.getByRole("button", { name: "Set up two-factor sign-in" }).click();
  await expect(page.getByTestId("enrolment").locator("svg")).toBeVisible();
  const secret = (await page.getByTestId("totp-secret").textContent()) ?? "";
  await page.getByLabel("Code from the app").fill(totpCode(secret, Math.floor(Date.now() / 30_000)));
  await page.getByRole("button", { name: "Turn it on" }).click();
  await expect(page.getByTestId("recovery-codes").locator("li")).toHaveCount(10);
  await expect(page.getByTestId("two-factor-on")).toContainText("10 recovery codes left");
  await page.goto("/");
  await expect(page.getByTestId("welcome")).toHaveText("Welcome, Nina Nurse");
  await expect(page.getByTestId("roles")).toContainText("Clinic staff");
  await context.close();
  // The browser logs the 403s of what the account page asks for before the second factor is on.
  expect(errors.filter((e) => !e.includes("403"))).toEqual([]);
});
