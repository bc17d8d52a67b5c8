//! UDP datagrams: one request per datagram, one reply per request, through
//! the same dispatch as TCP.
//!
//! Replies that would not fit a datagram become `too_large`; before
//! authentication a reply is never more than three times its request (no
//! amplification); with TLS on, only `hello` and `ping` are served.

use std::net::SocketAddr;
use std::sync::Arc;

use gradebook_proto::codec::to_datagram;
use gradebook_proto::{Encoding, ErrorCode, Reply, WireError};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use crate::dispatch::{State, Transport, dispatch};

/// Largest datagram read; anything longer is truncated and so malformed.
const MAX_DATAGRAM: usize = 64 * 1024;

/// Serves datagrams until shutdown.
pub async fn serve(socket: UdpSocket, state: Arc<State>, shutdown: CancellationToken) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = socket.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(error = %e, "UDP receive failed");
                    continue;
                }
            },
        };
        let request = &buf[..n];
        if let Some(reply) = answer(&state, request, peer).await {
            let _ = socket.send_to(&reply, peer).await;
        }
    }
}

/// The reply datagram for one request datagram, or nothing when no reply
/// may be sent.
async fn answer(state: &State, request: &[u8], peer: SocketAddr) -> Option<Vec<u8>> {
    let encoding = Encoding::sniff(request);
    let (mut reply, _) = dispatch(state, request, encoding, None, peer, Transport::Udp).await;
    if reply.id.is_none() && reply.result.is_ok() {
        reply = Reply::error(None, WireError::bad_request("a UDP request needs an id"));
    }
    let mut bytes = to_datagram(encoding, &reply).ok()?;
    if bytes.len() > state.limits.udp_max_reply {
        let e = WireError::new(
            ErrorCode::TooLarge,
            "the reply does not fit a datagram: send this request over TCP",
        );
        bytes = to_datagram(encoding, &Reply::error(reply.id.clone(), e)).ok()?;
    }
    // No amplification: a reply never more than three times its request
    // (a client pads its request to make room).
    if bytes.len() > 3 * request.len() {
        return None;
    }
    Some(bytes)
}
