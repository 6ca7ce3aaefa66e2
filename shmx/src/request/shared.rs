//! What a client and a server both keep of their service: its name, root and trust, the
//! limits of its queues, the endpoint's id, and the record of its types (made or checked
//! when the endpoint is made, removed by the last endpoint to leave).

use super::record::{Record, TypeRecord};
use super::{new_id, request_topic, response_topic};
use crate::config::TopicConfig;
use crate::error::{Error, Result};
use crate::name::TopicName;
use crate::root::Root;
use crate::service::TypeFacts;
use crate::trust::Trust;
use std::path::PathBuf;
use std::sync::Arc;

/// What a client and a server both keep of their service.
pub(super) struct Shared {
    pub service: TopicName,
    pub root_path: Option<PathBuf>,
    pub root: Arc<Root>,
    pub trust: Trust,
    pub topic: TopicConfig,
    pub id: u64,
    record: Record,
}

impl Shared {
    /// Opens the root and makes sure its record of `service` holds `req` and `resp`.
    pub(super) fn open(
        name: &str,
        root_path: Option<PathBuf>,
        topic: TopicConfig,
        (req, resp): (TypeFacts, TypeFacts),
    ) -> Result<Shared> {
        crate::defaults::check()?;
        let service = TopicName::new(name)?;
        // The longest part name must fit.
        request_topic(&service, u64::MAX)?;
        response_topic(&service, u64::MAX)?;
        topic.check(service.as_str())?;
        let trust = Trust::of(&topic);
        let root = Root::open(root_path.as_deref(), &trust)?;
        let record = Record {
            request: TypeRecord::of(&req),
            response: TypeRecord::of(&resp),
        };
        {
            let lock = root.lock(&trust)?;
            let in_use = || super::sweep_parts(&root, &service, &trust, &lock);
            record.ensure(&root, &service, &trust, topic.mode, in_use, &lock)?;
        }
        Ok(Shared {
            service,
            root_path,
            root,
            trust,
            topic,
            id: new_id(),
            record,
        })
    }

    /// Makes sure the record holds this endpoint's types once its queue exists: an
    /// endpoint that left between the first check and the queue's creation may have
    /// removed the record (it saw no queue), and another may have written other types.
    pub(super) fn recheck(&self) -> Result<()> {
        let lock = self.root.lock(&self.trust)?;
        let in_use = || true;
        self.record.ensure(
            &self.root,
            &self.service,
            &self.trust,
            self.topic.mode,
            in_use,
            &lock,
        )
    }

    /// Removes the service record if no part of the service is left (the endpoint's own
    /// parts are gone already).
    pub(super) fn leave(&self) {
        if let Some(lock) = self
            .root
            .lock_within(&self.trust, crate::root::LEAVING_WAIT)
        {
            // Queues of endpoints that died go too (swept), so a service whose last live
            // endpoint leaves leaves nothing behind.
            if !super::sweep_parts(&self.root, &self.service, &self.trust, &lock) {
                self.root
                    .dir()
                    .remove_file(&super::record::file_name(&self.service));
                self.root.remove_lock_if_alone(&lock);
            }
        }
    }

    pub(super) fn gone(&self, reason: String) -> Error {
        Error::PeerGone {
            service: self.service.as_str().to_owned(),
            reason,
        }
    }
}
