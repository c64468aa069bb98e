//! Preparers: public log formats turned into funnel tables (`funnel prepare`).

mod taobao;

pub use taobao::{TaobaoSummary, taobao};
