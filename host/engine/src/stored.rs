//! A stored session's state as data, for callers that change it without a
//! browser: read it, edit it in place (cookies, execution context), fork it
//! under a new name (the service's `fork`: free in the deduplicating store,
//! the copy shares every chunk).

use sessbundle::SessionState;
use sesshost_store::{ImportMode, SaveReport, SessionInfo, now_ms};

use crate::engine::{Engine, blocking};
use crate::error::Result;

impl Engine {
    /// The latest snapshot of `name`.
    pub async fn load_state(&self, name: &str) -> Result<SessionState> {
        let name = name.to_string();
        self.with_store(move |s| Ok(s.load(&name)?)).await
    }

    /// Edit a session that is not open: take its open lock (fails at once
    /// if a browser has it), load, apply `f`, save a new snapshot. Nothing
    /// is written when `f` fails.
    pub async fn edit_stored<T, F>(&self, name: &str, f: F) -> Result<(T, SaveReport)>
    where
        T: Send + 'static,
        F: FnOnce(&mut SessionState) -> Result<T> + Send + 'static,
    {
        let home = self.home().clone();
        let n = name.to_string();
        let lock = blocking(move || Ok(home.lock_session(&n)?)).await?;
        let name = name.to_string();
        let out = self
            .with_store(move |s| {
                let mut state = s.load(&name)?;
                let t = f(&mut state)?;
                let now = now_ms();
                state.meta.updated_at = now;
                let r = s.save(&name, &state, now)?;
                Ok((t, r))
            })
            .await;
        drop(lock);
        out
    }

    /// A new session `to` holding the latest state of `from` (its expiry,
    /// emulation and data); `from` may be open. Refuses an existing `to`.
    pub async fn fork(&self, from: &str, to: &str) -> Result<SessionInfo> {
        let (from, to) = (from.to_string(), to.to_string());
        self.with_store(move |s| {
            let mut state = s.load(&from)?;
            let now = now_ms();
            state.meta.name = to.clone();
            state.meta.created_at = now;
            state.meta.updated_at = now;
            s.import(&to, &state, ImportMode::New, now)?;
            Ok(s.show(&to)?)
        })
        .await
    }
}
