//! The events service as a node hosts it: the relay's options →
//! [`EventsService`] → [`EventsService::serve`], the [`ServiceParts`] the
//! node runs: the relay publishing every service's outbox to the bus (one
//! relay per partition at a time, behind leases) and sweeping the log.

use switchboard_platform::Backends;
use switchboard_runtime::ServiceParts;

use crate::{Relay, RelayOptions};

/// The name in `--services`.
pub const NAME: &str = "events";

/// The events service of a node.
pub struct EventsService {
    relay: Relay,
}

impl EventsService {
    /// The relay on the node's database (the system workers' pool) and bus.
    pub fn new(options: RelayOptions, backends: &Backends) -> Self {
        Self {
            relay: Relay::new(backends.database.clone(), backends.bus.clone(), options),
        }
    }

    /// What the node runs: the relay.
    pub fn serve(self) -> ServiceParts {
        let relay = self.relay;
        ServiceParts {
            name: NAME,
            grpc_service_names: Vec::new(),
            grpc: None,
            http: None,
            workers: vec![Box::new(move |stop| relay.spawn(stop))],
            draining: None,
        }
    }
}
