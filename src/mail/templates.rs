//! The bodies of each mail, plain text and HTML, from askama templates in `src/templates/mail/`.

use super::Mail;
use crate::error::{Error, Result};
use askama::Template;
use url::Url;

#[derive(Template)]
#[template(path = "mail/verify_address.txt")]
struct VerifyAddressText<'a> {
    name: &'a str,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/verify_address.html")]
struct VerifyAddressHtml<'a> {
    name: &'a str,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/already_registered.txt")]
struct AlreadyRegisteredText<'a> {
    name: &'a str,
    sign_in: &'a str,
    forgot: &'a str,
}

#[derive(Template)]
#[template(path = "mail/already_registered.html")]
struct AlreadyRegisteredHtml<'a> {
    name: &'a str,
    sign_in: &'a str,
    forgot: &'a str,
}

#[derive(Template)]
#[template(path = "mail/reset_password.txt")]
struct ResetPasswordText<'a> {
    name: &'a str,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/reset_password.html")]
struct ResetPasswordHtml<'a> {
    name: &'a str,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/staff_invitation.txt")]
struct StaffInvitationText<'a> {
    name: &'a str,
    clinic: &'a str,
    invited_by: &'a str,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/staff_invitation.html")]
struct StaffInvitationHtml<'a> {
    name: &'a str,
    clinic: &'a str,
    invited_by: &'a str,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/claim_code.txt")]
struct ClaimCodeText<'a> {
    name: &'a str,
    pet: &'a str,
    clinic: &'a str,
    code: &'a str,
    expires: &'a str,
    register: &'a str,
    claim: &'a str,
}

#[derive(Template)]
#[template(path = "mail/claim_code.html")]
struct ClaimCodeHtml<'a> {
    name: &'a str,
    pet: &'a str,
    clinic: &'a str,
    code: &'a str,
    expires: &'a str,
    register: &'a str,
    claim: &'a str,
}

#[derive(Template)]
#[template(path = "mail/admin_alert.txt")]
struct AdminAlertText<'a> {
    name: &'a str,
    problems: &'a [String],
    admin: &'a str,
}

#[derive(Template)]
#[template(path = "mail/admin_alert.html")]
struct AdminAlertHtml<'a> {
    name: &'a str,
    problems: &'a [String],
    admin: &'a str,
}

#[derive(Template)]
#[template(path = "mail/deletion_scheduled.txt")]
struct DeletionScheduledText<'a> {
    name: &'a str,
    date: &'a str,
    sign_in: &'a str,
}

#[derive(Template)]
#[template(path = "mail/deletion_scheduled.html")]
struct DeletionScheduledHtml<'a> {
    name: &'a str,
    date: &'a str,
    sign_in: &'a str,
}

/// `site` joined with `path` and, if given, `?token=`.
fn link(site: &Url, path: &str, token: Option<&str>) -> String {
    let mut url = site.clone();
    url.set_path(path);
    url.set_query(None);
    if let Some(token) = token {
        url.query_pairs_mut().append_pair("token", token);
    }
    url.to_string()
}

fn rendered(result: askama::Result<String>) -> Result<String> {
    result.map_err(|err| Error::Conflict(format!("mail template: {err}")))
}

pub(super) fn render(mail: &Mail, site: &Url) -> Result<(String, String)> {
    match mail {
        Mail::VerifyAddress { name, token } => {
            let link = &link(site, "/verify-email", Some(token));
            Ok((
                rendered(VerifyAddressText { name, link }.render())?,
                rendered(VerifyAddressHtml { name, link }.render())?,
            ))
        }
        Mail::AlreadyRegistered { name } => {
            let (sign_in, forgot) = (&link(site, "/login", None), &link(site, "/forgot-password", None));
            Ok((
                rendered(
                    AlreadyRegisteredText {
                        name,
                        sign_in,
                        forgot,
                    }
                    .render(),
                )?,
                rendered(
                    AlreadyRegisteredHtml {
                        name,
                        sign_in,
                        forgot,
                    }
                    .render(),
                )?,
            ))
        }
        Mail::ResetPassword { name, token } => {
            let link = &link(site, "/reset-password", Some(token));
            Ok((
                rendered(ResetPasswordText { name, link }.render())?,
                rendered(ResetPasswordHtml { name, link }.render())?,
            ))
        }
        Mail::DeletionScheduled { name, date } => {
            let sign_in = &link(site, "/login", None);
            Ok((
                rendered(DeletionScheduledText { name, date, sign_in }.render())?,
                rendered(DeletionScheduledHtml { name, date, sign_in }.render())?,
            ))
        }
        Mail::AdminAlert { name, problems } => {
            let admin = &link(site, "/admin", None);
            Ok((
                rendered(
                    AdminAlertText {
                        name,
                        problems,
                        admin,
                    }
                    .render(),
                )?,
                rendered(
                    AdminAlertHtml {
                        name,
                        problems,
                        admin,
                    }
                    .render(),
                )?,
            ))
        }
        Mail::ClaimCode {
            name,
            pet,
            clinic,
            code,
            expires,
        } => {
            let (register, claim) = (&link(site, "/register", None), &link(site, "/", None));
            let text = ClaimCodeText {
                name,
                pet,
                clinic,
                code,
                expires,
                register,
                claim,
            };
            let html = ClaimCodeHtml {
                name,
                pet,
                clinic,
                code,
                expires,
                register,
                claim,
            };
            Ok((rendered(text.render())?, rendered(html.render())?))
        }
        Mail::StaffInvitation {
            name,
            clinic,
            invited_by,
            token,
        } => {
            let link = &link(site, "/accept-invitation", Some(token));
            Ok((
                rendered(
                    StaffInvitationText {
                        name,
                        clinic,
                        invited_by,
                        link,
                    }
                    .render(),
                )?,
                rendered(
                    StaffInvitationHtml {
                        name,
                        clinic,
                        invited_by,
                        link,
                    }
                    .render(),
                )?,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_point_at_the_site_and_names_are_escaped_in_html() {
        let site: Url = "https://records.example.org/".parse().unwrap();
        let mail = Mail::VerifyAddress {
            name: "<b>Ada</b>".into(),
            token: "tok-EN_1".into(),
        };
        let (text, html) = mail.render(&site).unwrap();
        let link = "https://records.example.org/verify-email?token=tok-EN_1";
        assert!(text.contains(link), "{text}");
        assert!(text.contains("<b>Ada</b>"), "plain text is not escaped: {text}");
        assert!(html.contains(&format!("href=\"{link}\"")), "{html}");
        assert!(
            html.contains("&#60;b&#62;Ada") || html.contains("&lt;b&gt;Ada"),
            "{html}"
        );
        assert!(!html.contains("<b>Ada"), "{html}");
    }
}
