//! Feedback for a browser without JavaScript. A plain HTML form is answered with a redirect to a page of
//! our own site, and what it did is shown on that page: the POST handler leaves the feedback in the
//! session (a flash message; a claim code just issued), and the server takes it while it renders the page.
//! Leptos serialises the value into the page, so hydration shows it without another request; in the
//! browser these functions return nothing. No GET endpoint ever consumes it.

use pawfile::domain::{Flash, IssuedClaimCode, PetId};

/// Takes the message a plain form left for this page, while the server renders it.
pub async fn take_flash() -> Option<Flash> {
    #[cfg(feature = "ssr")]
    {
        let ctx = crate::http::RequestContext::get().ok()?;
        crate::http::session::take_flash(&ctx.session).await
    }
    #[cfg(not(feature = "ssr"))]
    None
}

/// Takes the claim code a plain form just issued for `pet`, while the server renders the pet's page.
pub async fn take_claim_code(pet: PetId) -> Option<IssuedClaimCode> {
    #[cfg(feature = "ssr")]
    {
        let ctx = crate::http::RequestContext::get().ok()?;
        crate::http::session::take_claim_code(&ctx.session, pet).await
    }
    #[cfg(not(feature = "ssr"))]
    {
        let _ = pet;
        None
    }
}
