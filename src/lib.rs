//! GroupMgr backend: an Azure Functions custom handler that manages Microsoft 365 groups for
//! customer tenants. See ARCHITECTURE.md for the picture this code follows.

pub mod activity;
pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod customer_list;
pub mod decrypt;
#[cfg(feature = "dev-sim")]
pub mod dev;
pub mod domain;
pub mod host;
pub mod jobs;
pub mod lifecycle;
pub mod microsoft;
pub mod secret;
pub mod startup;
pub mod storage;
pub mod store;
pub mod telemetry;
