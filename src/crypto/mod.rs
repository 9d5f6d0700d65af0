//! Cryptography on tenant data: the UPN blind index, tenant key pairs, and sealing (HPKE for
//! data keys, AES-256-GCM for records). Everything here is pure computation: no I/O except
//! reading and writing key files.

mod blind_index;
mod publisher;
pub mod seal;
pub mod tenant_key;

pub use blind_index::{
    BlindIndex, CursorKey, IndexKey, MacKey, PeopleSeal, PseudonymKey, TenantPseudonyms, UpnIndexer,
};
pub use publisher::PublisherKey;
pub use seal::{DataKey, OpenError, OpeningKey, SealedValue};
pub use tenant_key::{KeyFileError, TenantPrivateKey, TenantPublicKey};
