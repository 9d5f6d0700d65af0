//! Cryptography on tenant data: the UPN blind index (here) and, with the encrypted-logs work,
//! sealing to tenant keys. Everything uses `ring`; nothing here does I/O.

mod blind_index;

pub use blind_index::{BlindIndex, UpnIndexer};
