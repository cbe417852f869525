//! The account and where it is served: the regions kmsim answers in, and
//! Alibaba's calls about the account's KMS subscription, which in kmsim is
//! always open.

use super::operation;
use crate::engine::Outcome;
use crate::kernel::Names;

operation! {
    /// The regions kmsim knows by name, the server's and the caller's, and
    /// every region that holds something.
    DescribeRegions = DESCRIBE_REGIONS -> Vec<String> {}
    names(_) { Names::none() }
    run(_, app, cx) { Outcome::read(app.engine.regions(&[&app.region, &cx.region])) }
}

operation! {
    /// `Enabled`: kmsim's account has KMS from the start.
    DescribeAccountKmsStatus = DESCRIBE_ACCOUNT_KMS_STATUS -> &'static str {}
    names(_) { Names::none() }
    run(_, _, _) { Outcome::read("Enabled") }
}

operation! {
    /// Succeeds and changes nothing: there is nothing to open.
    OpenKmsService = OPEN_KMS_SERVICE -> () {}
    names(_) { Names::none() }
    run(_, _, _) { Outcome::read(()) }
}
