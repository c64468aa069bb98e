//! Preparers: public log formats turned into funnel tables (`funnel prepare`).

mod ali_ccp;
mod paddlerec;
mod taobao;

pub use ali_ccp::{AliCcpSummary, MULTI_FIELDS, SINGLE_FIELDS, ali_ccp, ali_ccp_in};
pub use paddlerec::paddlerec_esmm;
pub use taobao::{TaobaoSummary, taobao};
