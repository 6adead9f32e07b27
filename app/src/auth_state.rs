//! Who is signed in, as the pages see it: the signed-in user, reloaded after a sign-in, registration or
//! sign-out. The app provides both to every page.

use crate::{api::Logout, error::ApiError};
use leptos::prelude::*;
use pawfile::domain::SessionUser;

/// Who is signed in may change: pages that sign in bump `changed`; the header signs out.
#[derive(Clone, Copy)]
pub struct AuthState {
    /// Bumped after a sign-in or registration, to reload the user.
    pub changed: RwSignal<u64>,
    /// Sign out.
    pub logout: ServerAction<Logout>,
}

impl AuthState {
    /// Reloads the signed-in user everywhere.
    pub fn notify_changed(&self) {
        self.changed.update(|version| *version += 1);
    }
}

/// The signed-in user, reloaded whenever [`AuthState`] changes.
#[derive(Clone, Copy)]
pub struct UserResource(pub Resource<Result<Option<SessionUser>, ApiError>>);
