//! Values computed from the database and kept between requests while a
//! version read from the database says they are unchanged: mobility's
//! timelines, the heatmap's rows. The version is read on every request,
//! so replicas and restarts never serve a stale value; a value read
//! between the version and a concurrent change is only read again next time.

use std::sync::{Arc, Mutex};

/// Up to `N` values, each under a key and the version it was computed at;
/// the oldest goes when a new key comes.
pub struct Kept<K, V, T, const N: usize> {
    kept: Mutex<Vec<(K, V, Arc<T>)>>,
}

impl<K, V, T, const N: usize> Default for Kept<K, V, T, N> {
    fn default() -> Self {
        Self {
            kept: Mutex::new(Vec::new()),
        }
    }
}

impl<K: PartialEq, V: PartialEq, T, const N: usize> Kept<K, V, T, N> {
    /// The value kept under `key` at `version`, or `load`'s, kept from now.
    pub fn get_or_load<E>(
        &self,
        key: K,
        version: V,
        load: impl FnOnce() -> Result<T, E>,
    ) -> Result<Arc<T>, E> {
        let lock = || self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((.., value)) = lock().iter().find(|(k, v, _)| *k == key && *v == version) {
            return Ok(value.clone());
        }
        let value = Arc::new(load()?);
        let mut all = lock();
        all.retain(|(k, ..)| *k != key);
        all.push((key, version, value.clone()));
        if all.len() > N {
            all.remove(0);
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::Kept;

    #[test]
    fn a_value_is_loaded_again_only_when_its_version_changes() {
        let kept: Kept<&str, u32, String, 2> = Kept::default();
        let loads = std::cell::Cell::new(0);
        let get = |key, version| {
            kept.get_or_load(key, version, || {
                loads.set(loads.get() + 1);
                Ok::<_, ()>(format!("{key}@{version}"))
            })
            .unwrap()
        };
        assert_eq!(*get("a", 1), "a@1");
        assert_eq!(*get("a", 1), "a@1");
        assert_eq!(*get("a", 2), "a@2");
        assert_eq!(*get("b", 1), "b@1");
        assert_eq!(*get("c", 1), "c@1");
        // Two at most: "a" went when "c" came.
        assert_eq!(*get("a", 2), "a@2");
        assert_eq!(loads.get(), 5);
    }
}
