//! Image pulls in progress, layer by layer, as the engine reports them: what
//! a deployment's page shows while it is `pulling`. An image's record goes
//! when its pull ends.

use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// One layer of an image being pulled.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Layer {
    pub id: String,
    /// The engine's word for it: `Waiting`, `Downloading`, `Extracting`, `Pull complete`…
    pub status: String,
    pub current: Option<i64>,
    pub total: Option<i64>,
}

#[derive(Default)]
pub struct Pulls {
    images: Mutex<HashMap<String, BTreeMap<String, Layer>>>,
}

impl Pulls {
    /// Records one progress message of `image`'s pull; messages not about a layer are skipped.
    pub fn record(
        &self,
        image: &str,
        layer: Option<&str>,
        status: Option<&str>,
        current: Option<i64>,
        total: Option<i64>,
    ) {
        let (Some(id), Some(status)) = (layer, status) else { return };
        let mut images = self.images.lock().expect("pulls poisoned");
        let layer = Layer { id: id.to_string(), status: status.to_string(), current, total };
        images.entry(image.to_string()).or_default().insert(id.to_string(), layer);
    }

    pub fn finished(&self, image: &str) {
        self.images.lock().expect("pulls poisoned").remove(image);
    }

    /// The layers of `image`'s pull in progress; none when it is not being pulled.
    pub fn layers(&self, image: &str) -> Vec<Layer> {
        let images = self.images.lock().expect("pulls poisoned");
        images.get(image).map(|layers| layers.values().cloned().collect()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_follow_the_engine_s_messages_until_the_pull_ends() {
        let pulls = Pulls::default();
        pulls.record("x/y:1", None, Some("Pulling from x/y"), None, None);
        pulls.record("x/y:1", Some("a1"), Some("Downloading"), Some(10), Some(100));
        pulls.record("x/y:1", Some("b2"), Some("Waiting"), None, None);
        pulls.record("x/y:1", Some("a1"), Some("Downloading"), Some(60), Some(100));
        let layers = pulls.layers("x/y:1");
        assert_eq!(layers.len(), 2, "one entry per layer: {layers:?}");
        assert_eq!((layers[0].current, layers[0].total), (Some(60), Some(100)));
        assert!(pulls.layers("other:1").is_empty());
        pulls.finished("x/y:1");
        assert!(pulls.layers("x/y:1").is_empty());
    }
}
