//! What an audit row says was done: every action the control plane writes, as one enum.
//!
//! The text of each action is stored in the audit log and covered by each row's keyed
//! hash, and people filter and alert on it, so a variant's text never changes: the
//! table in the tests below fixes it. Rows read back keep their stored text as a
//! string ([`super::AuditRow::action`]): old rows may hold actions this binary no
//! longer writes, and they must still verify.

use std::fmt;
use std::str::FromStr;

/// An action written to the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    /// `agent.certificate.renew`: An agent renewed its certificate.
    AgentCertificateRenew,
    /// `agent.enrol`: An agent enrolled with a one-time token.
    AgentEnrol,
    /// `agent.enrol.refused`: An enrolment was refused (token used, expired or of another organisation).
    AgentEnrolRefused,
    /// `agent.enrolment_token.create`: An enrolment token was made.
    AgentEnrolmentTokenCreate,
    /// `agent.revoke`: An agent was revoked.
    AgentRevoke,
    /// `alert_channel.create`: An alert channel was added.
    AlertChannelCreate,
    /// `alert_channel.delete`: An alert channel was removed.
    AlertChannelDelete,
    /// `api_token.create`: An API token was made.
    ApiTokenCreate,
    /// `api_token.revoke`: An API token was revoked (by hand, or because its creator's membership changed).
    ApiTokenRevoke,
    /// `audit.chain.keyed`: The instance chain's seal of the rows written before the chain key existed.
    AuditChainKeyed,
    /// `auth.failed`: A sign-in failed.
    AuthFailed,
    /// `auth.recovery_code.use`: A recovery code stood in for a second factor.
    AuthRecoveryCodeUse,
    /// `auth.second_factor.failed`: A second-factor code was wrong.
    AuthSecondFactorFailed,
    /// `auth.sign_in`: A person signed in.
    AuthSignIn,
    /// `auth.sign_out`: A person signed out.
    AuthSignOut,
    /// `auth.throttled`: A sign-in was refused for too many failures.
    AuthThrottled,
    /// `backup.delete`: Retention deleted a backup's object (or found it gone).
    BackupDelete,
    /// `backup.delete_failed`: Retention could not delete a backup's object; it tries again later.
    BackupDeleteFailed,
    /// `database.create`: A database was added.
    DatabaseCreate,
    /// `database.update`: Where a database is reached, as whom, or its password changed.
    DatabaseUpdate,
    /// `destination.create`: A destination was added.
    DestinationCreate,
    /// `drill.create`: A restore drill was queued after a backup.
    DrillCreate,
    /// `drill.failed`: A restore drill failed: the backup did not restore, or its checks failed.
    DrillFailed,
    /// `drill.passed`: A restore drill passed: the backup restored and its checks held.
    DrillPassed,
    /// `invitation.accept`: An invitation was accepted.
    InvitationAccept,
    /// `invitation.create`: An invitation was made.
    InvitationCreate,
    /// `invitation.refused`: An invitation's use was refused.
    InvitationRefused,
    /// `invitation.revoke`: An invitation was revoked or withdrawn.
    InvitationRevoke,
    /// `job.abandoned_object_delete`: An object a lapsed backup attempt stored and never reported was deleted.
    JobAbandonedObjectDelete,
    /// `job.create`: A backup job was queued (by the scheduler or "run now").
    JobCreate,
    /// `job.credentials`: A running job's credentials were handed to its agent.
    JobCredentials,
    /// `job.failed`: A job's attempt failed.
    JobFailed,
    /// `job.lease_expired`: A job's agent stopped reporting; the job was queued again or failed.
    JobLeaseExpired,
    /// `job.start`: An agent claimed a job.
    JobStart,
    /// `job.succeeded`: A backup job succeeded and its backup was recorded.
    JobSucceeded,
    /// `master_key.rotate`: A secret's data key was re-wrapped under the active master key.
    MasterKeyRotate,
    /// `member.add`: Someone became a member.
    MemberAdd,
    /// `member.remove`: A member was removed.
    MemberRemove,
    /// `member.role_change`: A member's role changed.
    MemberRoleChange,
    /// `org.create`: An organisation was made.
    OrgCreate,
    /// `org.key.customer_seal.disable`: The organisation's key went back to being managed.
    OrgCustomerSealDisable,
    /// `org.key.customer_seal.enable`: The organisation's key was sealed with the customer's passphrase.
    OrgCustomerSealEnable,
    /// `org.key.customer_seal.wrong_passphrase`: A customer passphrase did not open the organisation's key.
    OrgCustomerSealWrongPassphrase,
    /// `org.recovery_key.export`: The organisation's recovery key was exported.
    OrgRecoveryKeyExport,
    /// `pki.org_ca.create`: An organisation's agent CA was made.
    PkiOrgCaCreate,
    /// `pki.root_ca.create`: The deployment's root CA was made.
    PkiRootCaCreate,
    /// `restore.create`: A managed restore was queued.
    RestoreCreate,
    /// `restore.succeeded`: A managed restore succeeded.
    RestoreSucceeded,
    /// `schedule.create`: A schedule was added.
    ScheduleCreate,
    /// `schedule.drill`: A schedule's restore drills were set or turned off.
    ScheduleDrill,
    /// `schedule.update`: A schedule's timing, retention or state was changed.
    ScheduleUpdate,
    /// `secret.unwrap`: A sealed secret was unwrapped, with the reason.
    SecretUnwrap,
    /// `user.create`: An account was made.
    UserCreate,
    /// `user.password_change`: A person changed their password.
    UserPasswordChange,
    /// `user.password_reset`: An admin gave a member a one-time password.
    UserPasswordReset,
    /// `user.second_factor.disable`: A person turned their second factor off.
    UserSecondFactorDisable,
    /// `user.second_factor.enrol`: A person turned a second factor on.
    UserSecondFactorEnrol,
}

impl AuditAction {
    /// Every action, in the order of their text.
    pub const ALL: [AuditAction; 57] = [
        Self::AlertChannelCreate,
        Self::AlertChannelDelete,
        Self::AgentCertificateRenew,
        Self::AgentEnrol,
        Self::AgentEnrolRefused,
        Self::AgentEnrolmentTokenCreate,
        Self::AgentRevoke,
        Self::ApiTokenCreate,
        Self::ApiTokenRevoke,
        Self::AuditChainKeyed,
        Self::AuthFailed,
        Self::AuthRecoveryCodeUse,
        Self::AuthSecondFactorFailed,
        Self::AuthSignIn,
        Self::AuthSignOut,
        Self::AuthThrottled,
        Self::BackupDelete,
        Self::BackupDeleteFailed,
        Self::DatabaseCreate,
        Self::DatabaseUpdate,
        Self::DestinationCreate,
        Self::DrillCreate,
        Self::DrillFailed,
        Self::DrillPassed,
        Self::InvitationAccept,
        Self::InvitationCreate,
        Self::InvitationRefused,
        Self::InvitationRevoke,
        Self::JobAbandonedObjectDelete,
        Self::JobCreate,
        Self::JobCredentials,
        Self::JobFailed,
        Self::JobLeaseExpired,
        Self::JobStart,
        Self::JobSucceeded,
        Self::MasterKeyRotate,
        Self::MemberAdd,
        Self::MemberRemove,
        Self::MemberRoleChange,
        Self::OrgCreate,
        Self::OrgCustomerSealDisable,
        Self::OrgCustomerSealEnable,
        Self::OrgCustomerSealWrongPassphrase,
        Self::OrgRecoveryKeyExport,
        Self::PkiOrgCaCreate,
        Self::PkiRootCaCreate,
        Self::RestoreCreate,
        Self::RestoreSucceeded,
        Self::ScheduleCreate,
        Self::ScheduleDrill,
        Self::ScheduleUpdate,
        Self::SecretUnwrap,
        Self::UserCreate,
        Self::UserPasswordChange,
        Self::UserPasswordReset,
        Self::UserSecondFactorDisable,
        Self::UserSecondFactorEnrol,
    ];

    /// The action as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AgentCertificateRenew => "agent.certificate.renew",
            Self::AgentEnrol => "agent.enrol",
            Self::AgentEnrolRefused => "agent.enrol.refused",
            Self::AgentEnrolmentTokenCreate => "agent.enrolment_token.create",
            Self::AgentRevoke => "agent.revoke",
            Self::AlertChannelCreate => "alert_channel.create",
            Self::AlertChannelDelete => "alert_channel.delete",
            Self::ApiTokenCreate => "api_token.create",
            Self::ApiTokenRevoke => "api_token.revoke",
            Self::AuditChainKeyed => "audit.chain.keyed",
            Self::AuthFailed => "auth.failed",
            Self::AuthRecoveryCodeUse => "auth.recovery_code.use",
            Self::AuthSecondFactorFailed => "auth.second_factor.failed",
            Self::AuthSignIn => "auth.sign_in",
            Self::AuthSignOut => "auth.sign_out",
            Self::AuthThrottled => "auth.throttled",
            Self::BackupDelete => "backup.delete",
            Self::BackupDeleteFailed => "backup.delete_failed",
            Self::DatabaseCreate => "database.create",
            Self::DatabaseUpdate => "database.update",
            Self::DestinationCreate => "destination.create",
            Self::DrillCreate => "drill.create",
            Self::DrillFailed => "drill.failed",
            Self::DrillPassed => "drill.passed",
            Self::InvitationAccept => "invitation.accept",
            Self::InvitationCreate => "invitation.create",
            Self::InvitationRefused => "invitation.refused",
            Self::InvitationRevoke => "invitation.revoke",
            Self::JobAbandonedObjectDelete => "job.abandoned_object_delete",
            Self::JobCreate => "job.create",
            Self::JobCredentials => "job.credentials",
            Self::JobFailed => "job.failed",
            Self::JobLeaseExpired => "job.lease_expired",
            Self::JobStart => "job.start",
            Self::JobSucceeded => "job.succeeded",
            Self::MasterKeyRotate => "master_key.rotate",
            Self::MemberAdd => "member.add",
            Self::MemberRemove => "member.remove",
            Self::MemberRoleChange => "member.role_change",
            Self::OrgCreate => "org.create",
            Self::OrgCustomerSealDisable => "org.key.customer_seal.disable",
            Self::OrgCustomerSealEnable => "org.key.customer_seal.enable",
            Self::OrgCustomerSealWrongPassphrase => "org.key.customer_seal.wrong_passphrase",
            Self::OrgRecoveryKeyExport => "org.recovery_key.export",
            Self::PkiOrgCaCreate => "pki.org_ca.create",
            Self::PkiRootCaCreate => "pki.root_ca.create",
            Self::RestoreCreate => "restore.create",
            Self::RestoreSucceeded => "restore.succeeded",
            Self::ScheduleCreate => "schedule.create",
            Self::ScheduleDrill => "schedule.drill",
            Self::ScheduleUpdate => "schedule.update",
            Self::SecretUnwrap => "secret.unwrap",
            Self::UserCreate => "user.create",
            Self::UserPasswordChange => "user.password_change",
            Self::UserPasswordReset => "user.password_reset",
            Self::UserSecondFactorDisable => "user.second_factor.disable",
            Self::UserSecondFactorEnrol => "user.second_factor.enrol",
        }
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text that names no action this binary writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown audit action {0:?}")]
pub struct UnknownAction(pub String);

impl FromStr for AuditAction {
    type Err = UnknownAction;

    fn from_str(text: &str) -> Result<Self, UnknownAction> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == text)
            .ok_or_else(|| UnknownAction(text.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::AuditAction::{self, *};

    /// The stored text of every action. Changing a line here changes what the audit log
    /// says and breaks filters and alerts on it: add actions, never rename them.
    const TEXT: [(AuditAction, &str); 57] = [
        (AlertChannelCreate, "alert_channel.create"),
        (AlertChannelDelete, "alert_channel.delete"),
        (AgentCertificateRenew, "agent.certificate.renew"),
        (AgentEnrol, "agent.enrol"),
        (AgentEnrolRefused, "agent.enrol.refused"),
        (AgentEnrolmentTokenCreate, "agent.enrolment_token.create"),
        (AgentRevoke, "agent.revoke"),
        (ApiTokenCreate, "api_token.create"),
        (ApiTokenRevoke, "api_token.revoke"),
        (AuditChainKeyed, "audit.chain.keyed"),
        (AuthFailed, "auth.failed"),
        (AuthRecoveryCodeUse, "auth.recovery_code.use"),
        (AuthSecondFactorFailed, "auth.second_factor.failed"),
        (AuthSignIn, "auth.sign_in"),
        (AuthSignOut, "auth.sign_out"),
        (AuthThrottled, "auth.throttled"),
        (BackupDelete, "backup.delete"),
        (BackupDeleteFailed, "backup.delete_failed"),
        (DatabaseCreate, "database.create"),
        (DatabaseUpdate, "database.update"),
        (DestinationCreate, "destination.create"),
        (DrillCreate, "drill.create"),
        (DrillFailed, "drill.failed"),
        (DrillPassed, "drill.passed"),
        (InvitationAccept, "invitation.accept"),
        (InvitationCreate, "invitation.create"),
        (InvitationRefused, "invitation.refused"),
        (InvitationRevoke, "invitation.revoke"),
        (JobAbandonedObjectDelete, "job.abandoned_object_delete"),
        (JobCreate, "job.create"),
        (JobCredentials, "job.credentials"),
        (JobFailed, "job.failed"),
        (JobLeaseExpired, "job.lease_expired"),
        (JobStart, "job.start"),
        (JobSucceeded, "job.succeeded"),
        (MasterKeyRotate, "master_key.rotate"),
        (MemberAdd, "member.add"),
        (MemberRemove, "member.remove"),
        (MemberRoleChange, "member.role_change"),
        (OrgCreate, "org.create"),
        (OrgCustomerSealDisable, "org.key.customer_seal.disable"),
        (OrgCustomerSealEnable, "org.key.customer_seal.enable"),
        (
            OrgCustomerSealWrongPassphrase,
            "org.key.customer_seal.wrong_passphrase",
        ),
        (OrgRecoveryKeyExport, "org.recovery_key.export"),
        (PkiOrgCaCreate, "pki.org_ca.create"),
        (PkiRootCaCreate, "pki.root_ca.create"),
        (RestoreCreate, "restore.create"),
        (RestoreSucceeded, "restore.succeeded"),
        (ScheduleCreate, "schedule.create"),
        (ScheduleDrill, "schedule.drill"),
        (ScheduleUpdate, "schedule.update"),
        (SecretUnwrap, "secret.unwrap"),
        (UserCreate, "user.create"),
        (UserPasswordChange, "user.password_change"),
        (UserPasswordReset, "user.password_reset"),
        (UserSecondFactorDisable, "user.second_factor.disable"),
        (UserSecondFactorEnrol, "user.second_factor.enrol"),
    ];

    #[test]
    fn each_action_has_its_stored_text() {
        assert_eq!(AuditAction::ALL.len(), TEXT.len());
        for (action, text) in TEXT {
            assert_eq!(action.as_str(), text);
            assert_eq!(action.to_string(), text);
            assert_eq!(text.parse::<AuditAction>(), Ok(action));
            assert!(AuditAction::ALL.contains(&action));
        }
    }

    #[test]
    fn actions_are_distinct_and_unknown_text_is_refused() {
        let mut texts: Vec<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        texts.sort_unstable();
        texts.dedup();
        assert_eq!(texts.len(), AuditAction::ALL.len());
        assert!("job.start ".parse::<AuditAction>().is_err());
        assert!("recovery_key.export".parse::<AuditAction>().is_err());
    }
}
