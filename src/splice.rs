//! After login: replay what each side already sent, then copy bytes both ways until
//! both directions are closed. `copy_bidirectional_with_sizes` propagates half-closes
//! (EOF on one side shuts down the other's write half and keeps copying the other way).

use tokio::io::{AsyncWriteExt, copy_bidirectional_with_sizes};
use tokio_util::sync::CancellationToken;

use crate::stream::Stream;

/// Buffer size of each direction of the splice.
pub const SPLICE_BUFFER: usize = 64 * 1024;

/// Bytes moved by one splice.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Transferred {
    /// Client → server, leftovers included.
    pub up: u64,
    /// Server → client, leftovers included.
    pub down: u64,
}

/// Splices `down` (the client) and `up` (the server). `down_leftover` are bytes the
/// client sent after its login command, `up_leftover` bytes the server sent after its
/// login reply; each is written to the other side first. Returns when both directions
/// are done, either side fails, or `shutdown` is cancelled.
pub async fn splice(
    down: &mut Stream,
    up: &mut Stream,
    down_leftover: &[u8],
    up_leftover: &[u8],
    shutdown: &CancellationToken,
) -> std::io::Result<Transferred> {
    if !down_leftover.is_empty() {
        up.write_all(down_leftover).await?;
        up.flush().await?;
    }
    if !up_leftover.is_empty() {
        down.write_all(up_leftover).await?;
        down.flush().await?;
    }
    let base = Transferred {
        up: down_leftover.len() as u64,
        down: up_leftover.len() as u64,
    };
    tokio::select! {
        r = copy_bidirectional_with_sizes(down, up, SPLICE_BUFFER, SPLICE_BUFFER) => {
            let (a, b) = r?;
            Ok(Transferred { up: base.up + a, down: base.down + b })
        }
        _ = shutdown.cancelled() => Ok(base),
    }
}
