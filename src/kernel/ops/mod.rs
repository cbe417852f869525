//! Every operation kmsim offers, in the kernel's own terms: the request as
//! Rust values (no wire type), the parameters its audit record may keep (in
//! Alibaba's spelling, as an allow-list), the resources it names for
//! authorization, and its work against the engine. A front end decodes its
//! wire request into one of these and renders its output; what the operation
//! is, is said here once, for every front end.
//!
//! Outputs are the engine's own values (a key's metadata, a sealed
//! ciphertext, a page of aliases); how they look on the wire is the front
//! end's business.

pub mod access;
pub mod account;
pub mod audit;
pub mod events;
pub mod grants;
pub mod instances;
pub mod kms;
pub mod lookup;
pub mod params;
pub mod secrets;
pub mod simulation;
pub mod tags;

use std::sync::Arc;

use serde_json::Value;

use self::params::Param;
use crate::context::CallContext;
use crate::engine::{KmsResult, Page, Paged};
use crate::kernel::{App, Described, Names, OpSpec, Operation, Ran};

/// What a streaming operation (a tail, a watch, an export) answers with: the
/// items that go on arriving after the answer. Its record says the stream was
/// opened, not what it carried.
pub type Stream<T> = std::pin::Pin<Box<dyn tokio_stream::Stream<Item = T> + Send>>;

/// A live stream's reader fell behind by this many items, which are gone: a
/// reader learns it missed some rather than silently skipping them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Missed(pub u64);

/// A page of a listing that answers everything it finds: the listing itself
/// (its catalogue entry, the resources it names, its work) with Alibaba's
/// page parameters added to its record, for a front end whose protocol pages
/// what another front end lists whole.
pub struct PageOf<O> {
    pub listing: O,
    pub page_number: i32,
    pub page_size: i32,
}

impl<O, T> Operation for PageOf<O>
where
    O: Operation<Output = Vec<T>>,
    T: Send + 'static,
{
    type Output = Paged<T>;

    fn spec(&self) -> &'static OpSpec {
        self.listing.spec()
    }

    fn audit_params(&self) -> Value {
        let mut params = self.listing.audit_params();
        if let Value::Object(fields) = &mut params {
            for (name, value) in [("PageNumber", self.page_number), ("PageSize", self.page_size)] {
                if let Some(value) = value.param() {
                    fields.insert(name.to_owned(), value);
                }
            }
        }
        params
    }

    fn names(&self) -> Names {
        self.listing.names()
    }

    async fn run(self, app: Arc<App>, cx: Arc<CallContext>) -> KmsResult<Ran<Paged<T>>> {
        let page = Page::from_request(self.page_number, self.page_size)?;
        Ok(self.listing.run(app, cx).await?.map(|all| page.slice(all)))
    }
}

impl<O, T> Described for PageOf<O>
where
    O: Described<Output = Vec<T>>,
    T: Send + 'static,
{
    const SPEC: &'static OpSpec = O::SPEC;
}

/// Declares one operation: its request struct, whose fields listed with an
/// audit name (`= "KeyId"`) are the parameters its record keeps, in that
/// order; the resources it names (`names(op) { … }`); and its work
/// (`run(op, app, cx) { … }`, ending in an engine outcome or a [`Ran`]).
///
/// Fields are not `Debug`: a request may carry plaintext or a secret, and only
/// the audited fields ever leave it.
///
/// [`Ran`]: crate::kernel::Ran
macro_rules! operation {
    (
        $(#[$doc:meta])*
        $name:ident = $spec:ident -> $output:ty {
            $($(#[$field_doc:meta])* $field:ident: $ty:ty $(= $param:literal)?),* $(,)?
        }
        names($names_op:pat) $names:block
        run($op:pat, $app:pat, $cx:pat) $run:block
    ) => {
        $(#[$doc])*
        pub struct $name {
            $($(#[$field_doc])* pub $field: $ty),*
        }

        impl $crate::kernel::Described for $name {
            const SPEC: &'static $crate::kernel::OpSpec = &$crate::kernel::OpSpec::$spec;
        }

        impl $crate::kernel::Operation for $name {
            type Output = $output;

            fn spec(&self) -> &'static $crate::kernel::OpSpec {
                &$crate::kernel::OpSpec::$spec
            }

            #[allow(unused_mut)]
            fn audit_params(&self) -> serde_json::Value {
                let mut params = serde_json::Map::new();
                $($(
                    if let Some(value) = $crate::kernel::ops::params::Param::param(&self.$field) {
                        params.insert($param.to_owned(), value);
                    }
                )?)*
                serde_json::Value::Object(params)
            }

            fn names(&self) -> $crate::kernel::Names {
                let $names_op = self;
                $names
            }

            async fn run(
                self,
                $app: std::sync::Arc<$crate::kernel::App>,
                $cx: std::sync::Arc<$crate::context::CallContext>,
            ) -> $crate::engine::KmsResult<$crate::kernel::Ran<$output>> {
                let $op = self;
                Ok($crate::kernel::IntoRan::into_ran($run))
            }
        }
    };
}

pub(crate) use operation;
