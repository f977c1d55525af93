//! Where an append gets its place: its events are numbered and put in their
//! log's in-memory tail in the append call itself, and only then go to the
//! writer thread, which makes them durable. Readers see an event as soon as it
//! is numbered, so delivery never waits for the writer (nor for the CPU it
//! needs); the append's answer still does. Commands reach the writer in the
//! order they were numbered (they are sent under the same lock), so each
//! commit holds a contiguous run of each log's events.
//!
//! A caught-up Channel→Broker relay is done here too (`fanout`): the
//! Channel's new events are numbered into each attached Broker's log in the
//! same call and go to the writer in the same command, which also moves the
//! relay's cursor in the same commit.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::mpsc::Sender;

use tokio::sync::oneshot;

use super::command::{Command, Relayed};
use super::cursor::Cursor;
use super::fanout::{Fanout, Fanouts};
use super::log_state::LogState;
use super::record::{Encoded, Record, now_ms};
use crate::mesh::event::PreparedEvent;

pub struct Sequencer {
    commands: Sender<Command>,
    /// Each log and the number its next event gets.
    logs: HashMap<i64, (Arc<LogState>, u64)>,
    fanouts: Fanouts,
}

impl Sequencer {
    pub fn new(commands: Sender<Command>) -> Self {
        Self {
            commands,
            logs: HashMap::new(),
            fanouts: Fanouts::default(),
        }
    }

    /// Sends a command in turn with the appends numbered before it.
    pub fn send(&self, command: Command) -> Result<(), Command> {
        self.commands.send(command).map_err(|unsent| unsent.0)
    }

    pub fn open(&mut self, log: Arc<LogState>, next: u64) {
        self.logs.insert(log.id, (log, next));
    }

    pub fn close(&mut self, log: i64) {
        self.logs.remove(&log);
        self.fanouts.detach_log(log);
    }

    /// Numbers `events` into `log` (and into the logs of its caught-up
    /// relays), makes them readable and hands them to the writer, which
    /// answers `reply` once they are durable. Err when the log is gone or the
    /// writer stopped: nothing was made readable then.
    pub fn append(
        &mut self,
        log: &Arc<LogState>,
        events: Vec<(Arc<PreparedEvent>, Encoded)>,
        size: u64,
        reply: oneshot::Sender<Result<(), super::LogError>>,
    ) -> Result<(), &'static str> {
        let count = events.len() as u64;
        let first = {
            let Some((_, next)) = self.logs.get_mut(&log.id) else {
                return Err("its log was dropped");
            };
            let first = *next;
            *next += count;
            first
        };
        let channel_next = first + count;
        let at_ms = now_ms();
        let (events, encoded): (Vec<_>, Vec<_>) = events.into_iter().unzip();
        let mut relayed = Vec::new();
        let mut kept = Vec::new();
        for fanout in self.fanouts.take(log.id) {
            let Some((target, next)) = self.logs.get_mut(&fanout.to) else {
                // Dropping it tells the relay's task.
                continue;
            };
            if !target.budget.try_take(size) {
                continue;
            }
            relayed.push(Relayed {
                to: target.clone(),
                first: *next,
                bytes: size,
                cursor: fanout.cursor.clone(),
                channel_next,
            });
            *next += count;
            kept.push(fanout);
        }
        self.fanouts.put_back(log.id, kept);
        let copies: Vec<(Arc<LogState>, u64)> =
            relayed.iter().map(|r| (r.to.clone(), r.first)).collect();
        let cursors: Vec<Arc<Cursor>> = relayed.iter().map(|r| r.cursor.clone()).collect();
        let command = Command::Append {
            log: log.id,
            first,
            at_ms,
            encoded,
            size,
            relayed,
            reply,
        };
        if let Err(unsent) = self.commands.send(command) {
            if let Command::Append { relayed, .. } = unsent.0 {
                for copy in relayed {
                    copy.to.budget.give_back(copy.bytes);
                }
            }
            return Err("the writer has stopped");
        }
        let numbered = |from: u64| -> Vec<Record> {
            (from..)
                .zip(&events)
                .map(|(seq, event)| Record {
                    seq,
                    at_ms,
                    event: event.clone(),
                })
                .collect()
        };
        for (target, from) in copies {
            target.publish(numbered(from), from + count);
        }
        log.publish(numbered(first), channel_next);
        for cursor in cursors {
            cursor.passed(channel_next);
        }
        Ok(())
    }

    /// Relays `from`'s new events to `fanout.to` here from now on, if the
    /// relay is caught up at `at`.
    pub fn attach(&mut self, from: i64, at: u64, fanout: Fanout) -> bool {
        let caught_up = self.logs.get(&from).is_some_and(|(_, next)| *next == at)
            && self.logs.contains_key(&fanout.to);
        if caught_up {
            self.fanouts.attach(from, fanout);
        }
        caught_up
    }

    pub fn detach_consumer(&mut self, consumer: &str) {
        self.fanouts.detach_consumer(consumer);
    }

    pub fn retain(&mut self, keep: &HashSet<String>) {
        self.fanouts.retain(keep);
    }
}
