//! `broadcast`: a sequence-numbered message to every subscriber (proletariat's system
//! messages). The last `BROADCASTS_KEPT_MAX` are kept so a reconnecting subscriber can
//! catch up from the last sequence number it saw.

use crate::limits;
use crate::machine::{BroadcastMessage, StateMachine};
use crate::outcome::{CommandResult, Reply};
use crate::validate;

impl StateMachine {
    pub(crate) fn broadcast(&mut self, channel: &str, message: &str) -> CommandResult {
        validate::name("channel", channel)?;
        validate::blob("message", message, limits::BROADCAST_BYTES_MAX)?;
        self.last_broadcast_seq += 1;
        if self.broadcasts.len() == limits::BROADCASTS_KEPT_MAX {
            self.broadcasts.pop_front();
        }
        self.broadcasts.push_back(BroadcastMessage {
            seq: self.last_broadcast_seq,
            wall_ms: self.wall_ms,
            channel: channel.to_owned(),
            message: message.to_owned(),
        });
        Ok(Reply::Broadcast {
            seq: self.last_broadcast_seq,
        })
    }
}
