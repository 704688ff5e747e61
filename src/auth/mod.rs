//! Who is calling: accounts, password hashing, session tokens, the first
//! admin, and the request extractors that handlers use to require a caller.

pub mod accounts;
pub mod api_keys;
pub mod bootstrap;
pub mod caller;
pub mod http;
pub mod password;
pub mod session;
pub mod store;
pub mod token;

pub use bootstrap::{InitialAdmin, bootstrap_if_empty};
pub use caller::{Caller, Permission, Reach, Scope};
pub use session::{Principal, SignedIn};
