//! The Azure Functions custom-handler side (functions-custom-handler.md): the HTTP server the
//! host talks to, the route table that the `functions/*/function.json` files mirror, and the
//! invocation envelopes of timer and queue functions.
//!
//! HTTP functions are forwarded as-is (`enableForwardingHttpRequest`), so the handler sees the
//! original `/api/...` path; timer and queue functions arrive as `POST /<FunctionName>` with a
//! `{"Data","Metadata"}` envelope and are answered with `{"Outputs","Logs","ReturnValue"}`.

mod dispatch;
pub mod functions;
pub mod invocation;
pub mod router;
mod server;

pub use dispatch::{HttpRequest, handle};
pub use server::serve;
