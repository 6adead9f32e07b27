use serde::{Deserialize, Serialize};
use std::fmt;

/// What a user may do. A user holds a set of roles: an admin of a small clinic may also be its staff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Keeps pets and their documents.
    Owner,
    /// Works at one clinic: reads the pets shared with it and writes their medical records.
    Staff,
    /// Manages clinics, accounts and backups; does not read medical content by virtue of this role.
    Admin,
}

impl Role {
    /// Every role, in display order.
    pub const ALL: [Role; 3] = [Role::Owner, Role::Staff, Role::Admin];

    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Staff => "staff",
            Role::Admin => "admin",
        }
    }

    /// The stored name back to a role.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.as_str() == name)
    }

    /// How the role is shown to people.
    pub fn label(self) -> &'static str {
        match self {
            Role::Owner => "Pet owner",
            Role::Staff => "Clinic staff",
            Role::Admin => "Administrator",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A set of roles, kept sorted and without repeats.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Roles(Vec<Role>);

impl Roles {
    /// The set holding `roles`.
    pub fn new(roles: impl IntoIterator<Item = Role>) -> Self {
        let mut roles: Vec<Role> = roles.into_iter().collect();
        roles.sort();
        roles.dedup();
        Self(roles)
    }

    /// Roles from their stored names; unknown names are ignored (the database constrains them anyway).
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Self {
        Self::new(names.iter().filter_map(|name| Role::from_name(name.as_ref())))
    }

    /// The stored names.
    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(|role| role.as_str().to_owned()).collect()
    }

    /// Whether the set holds `role`.
    pub fn has(&self, role: Role) -> bool {
        self.0.contains(&role)
    }

    /// The roles, in display order.
    pub fn iter(&self) -> impl Iterator<Item = Role> + '_ {
        self.0.iter().copied()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_a_sorted_set() {
        let roles = Roles::new([Role::Admin, Role::Staff, Role::Admin]);
        assert_eq!(roles.iter().collect::<Vec<_>>(), vec![Role::Staff, Role::Admin]);
        assert!(roles.has(Role::Admin));
        assert!(!roles.has(Role::Owner));
    }

    #[test]
    fn role_names_round_trip() {
        let roles = Roles::new(Role::ALL);
        assert_eq!(Roles::from_names(&roles.names()), roles);
        assert_eq!(Roles::from_names(&["owner", "root"]), Roles::new([Role::Owner]));
    }
}
