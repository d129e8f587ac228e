//! Every answer of the control plane the agent parses (next job, the job's one-time
//! credentials, configuration, enrolment and renewal, progress and completion, errors):
//! a compromised or impersonated control plane controls these bytes.
#![no_main]

use dbcrate_core::wire::{
    CompletionAnswer, ConfigAnswer, EnrolAnswer, ErrorAnswer, JobCredentials, NextJobAnswer,
    ProgressAnswer, RenewAnswer,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<NextJobAnswer>(data);
    let _ = serde_json::from_slice::<JobCredentials>(data);
    let _ = serde_json::from_slice::<ConfigAnswer>(data);
    let _ = serde_json::from_slice::<EnrolAnswer>(data);
    let _ = serde_json::from_slice::<RenewAnswer>(data);
    let _ = serde_json::from_slice::<ProgressAnswer>(data);
    let _ = serde_json::from_slice::<CompletionAnswer>(data);
    let _ = serde_json::from_slice::<ErrorAnswer>(data);
});
