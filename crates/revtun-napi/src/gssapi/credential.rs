//! Alternate credentials (sshUser and sshPassword in the GSSAPI modes), shared by every security
//! context of one connection. gss_acquire_cred_with_password is an AS exchange with the KDC; a
//! connection starts up to three contexts (the probe before offering the GSSAPI key exchanges,
//! the key exchange, gssapi-with-mic), and each acquiring its own would send the password to
//! the KDC up to three times per connection. Against an Active Directory that locks an account
//! after a few failed logons, a wrong password would then lock the account three times as fast.
//! So the first step that needs the credential acquires it, and every later one reuses the
//! handle, or the failure, without asking the KDC again.

use std::sync::{Arc, Mutex};

use napi::{Error, Result, Status};
use napi_derive::napi;

use super::{
    api, failure, import_name, lend, oid, Api, GssCred, OidSet, GSS_C_INDEFINITE, GSS_C_INITIATE,
    KRB5_MECHANISM, LIBRARY, NT_KRB5_PRINCIPAL,
};

enum Slot {
    /// The password, until the KDC has been asked (then wiped and dropped).
    NotYet(String),
    Acquired(GssCred),
    /// The KDC's refusal, as it was reported the first time.
    Failed(String),
}

// SAFETY: the credential handle points into MIT krb5's heap; krb5 guards each credential with
// a lock of its own, and the handle is only released in Drop, once nothing else holds it.
unsafe impl Send for Slot {}

pub(super) struct Shared {
    user: String,
    slot: Mutex<Slot>,
}

impl Shared {
    /// The credential handle, acquired by the first caller (on a worker thread: it waits on
    /// the KDC); later callers get the same handle or the same error.
    pub(super) fn get(&self, api: &Api) -> Result<GssCred> {
        let mut slot = self
            .slot
            .lock()
            .map_err(|_| Error::new(Status::GenericFailure, "the GSSAPI credential is unusable"))?;
        let mut password = match &mut *slot {
            Slot::Acquired(credential) => return Ok(*credential),
            Slot::Failed(reason) => return Err(Error::new(Status::GenericFailure, reason.clone())),
            Slot::NotYet(password) => core::mem::take(password),
        };
        let result = self.acquire(api, &password);
        wipe(&mut password);
        *slot = match &result {
            Ok(credential) => Slot::Acquired(*credential),
            Err(error) => Slot::Failed(error.reason.clone()),
        };
        result
    }

    fn acquire(&self, api: &Api, password: &str) -> Result<GssCred> {
        let acquire = api.acquire_cred_with_password.ok_or_else(|| {
            Error::new(
                Status::GenericFailure,
                format!("{LIBRARY} has no gss_acquire_cred_with_password"),
            )
        })?;
        let mut principal = import_name(api, &self.user, NT_KRB5_PRINCIPAL)?;
        let mechanism = oid(KRB5_MECHANISM);
        let mechanisms = OidSet {
            count: 1,
            elements: &mechanism,
        };
        let secret = lend(password.as_bytes());
        let mut credential: GssCred = core::ptr::null_mut();
        let mut minor = 0;
        // SAFETY: every pointer outlives the call; `credential` receives a new handle.
        let major = unsafe {
            acquire(
                &mut minor,
                principal,
                &secret,
                GSS_C_INDEFINITE,
                &mechanisms,
                GSS_C_INITIATE,
                &mut credential,
                core::ptr::null_mut(),
                core::ptr::null_mut(),
            )
        };
        let mut ignored = 0;
        // SAFETY: the principal name was imported above and is released once.
        unsafe { (api.release_name)(&mut ignored, &mut principal) };
        if super::is_error(major) {
            return Err(failure(
                api,
                &format!("gss_acquire_cred_with_password({})", self.user),
                major,
                minor,
            ));
        }
        Ok(credential)
    }
}

/// Overwrites the password's bytes before they are freed (the allocator would leave them).
fn wipe(password: &mut str) {
    // SAFETY: zero bytes are valid UTF-8, so the text stays valid.
    unsafe { password.as_bytes_mut() }.fill(0);
}

impl Drop for Shared {
    fn drop(&mut self) {
        let Ok(slot) = self.slot.get_mut() else {
            return;
        };
        if let Slot::NotYet(password) = slot {
            wipe(password);
        }
        if let (Slot::Acquired(credential), Ok(api)) = (slot, api()) {
            let mut minor = 0;
            // SAFETY: the handle is GSSAPI's own and this is its only release: every context
            // that used it held this Shared, and the last of them is being dropped.
            unsafe { (api.release_cred)(&mut minor, credential) };
        }
    }
}

/// sshUser's Kerberos credential from a password, for the contexts of one connection: pass it
/// to each GssInitiator. Nothing is asked of the KDC until a context's first step.
#[napi]
pub struct GssCredential {
    pub(super) shared: Arc<Shared>,
}

#[napi]
impl GssCredential {
    #[napi(constructor)]
    pub fn new(user: String, password: String) -> Self {
        GssCredential {
            shared: Arc::new(Shared {
                user,
                slot: Mutex::new(Slot::NotYet(password)),
            }),
        }
    }
}
