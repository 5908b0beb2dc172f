//! registry-api's own metrics beside the request counts of
//! `service_runtime::metrics`: blob bytes in and out.

/// Blob bytes received from clients.
pub fn bytes_received(count: u64) {
    metrics::counter!("registry_blob_bytes_received_total").increment(count);
}

/// Blob bytes sent to clients.
pub fn bytes_sent(count: u64) {
    metrics::counter!("registry_blob_bytes_sent_total").increment(count);
}
