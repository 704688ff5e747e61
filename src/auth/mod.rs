//! Who is calling: accounts, password hashing, session tokens, the first
//! admin, and the request extractors that handlers use to require a caller.

pub mod bootstrap;
pub mod http;
pub mod password;
pub mod session;
pub mod store;
pub mod token;

pub use bootstrap::{InitialAdmin, bootstrap_if_empty};
pub use session::{Principal, SignedIn};
