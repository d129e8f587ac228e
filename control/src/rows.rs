//! Reading rows into structs by column name, and enums stored as their text.
//!
//! Queries read whole rows into structs with `sqlx::query_as`, each field from the
//! column of its name, so a reordered or widened `SELECT` cannot hand a value to the
//! wrong field (positional reads could, silently, when two columns share a type).
//!
//! [`from_row!`](from_row) is what `#[derive(sqlx::FromRow)]` would write. The derive
//! is not used because sqlx's proc-macro crate builds sqlx's PostgreSQL and SQLite
//! drivers, tokio and more a second time for the host (with other features), which
//! `cargo tree -d` shows and every cold build pays for. The macro needs nothing but
//! `sqlx::Row`, and works with `sqlx::Any` over both engines.
//!
//! [`text_column!`](text_column) lets an enum with `as_str` and `FromStr` be bound and
//! read as a TEXT column; the enum's own tests fix the text of each variant, since that
//! text is the stored data.

/// Implements `sqlx::FromRow` for `AnyRow` on a struct: each listed field is read from
/// the column of the same name (alias columns in the `SELECT` to match). Every field of
/// the struct must be listed (the struct literal it expands to checks that).
macro_rules! from_row {
    ($type:ident { $($field:ident),+ $(,)? }) => {
        impl ::sqlx::FromRow<'_, ::sqlx::any::AnyRow> for $type {
            fn from_row(row: &::sqlx::any::AnyRow) -> ::std::result::Result<Self, ::sqlx::Error> {
                Ok(Self {
                    $($field: ::sqlx::Row::try_get(row, stringify!($field))?,)+
                })
            }
        }
    };
}
pub(crate) use from_row;

/// Implements `sqlx::Type`, `Encode` and `Decode` for `sqlx::Any` on an enum stored as
/// TEXT, through its `as_str` and `FromStr`. Text no variant has is a decoding error
/// (the schema's CHECK constraints keep such text out).
macro_rules! text_column {
    ($type:ty) => {
        impl ::sqlx::Type<::sqlx::Any> for $type {
            fn type_info() -> ::sqlx::any::AnyTypeInfo {
                <::std::string::String as ::sqlx::Type<::sqlx::Any>>::type_info()
            }

            fn compatible(ty: &::sqlx::any::AnyTypeInfo) -> bool {
                <::std::string::String as ::sqlx::Type<::sqlx::Any>>::compatible(ty)
            }
        }

        impl<'q> ::sqlx::Encode<'q, ::sqlx::Any> for $type {
            fn encode_by_ref(
                &self,
                buf: &mut <::sqlx::Any as ::sqlx::Database>::ArgumentBuffer<'q>,
            ) -> ::std::result::Result<::sqlx::encode::IsNull, ::sqlx::error::BoxDynError> {
                <&str as ::sqlx::Encode<'q, ::sqlx::Any>>::encode(self.as_str(), buf)
            }
        }

        impl<'r> ::sqlx::Decode<'r, ::sqlx::Any> for $type {
            fn decode(
                value: ::sqlx::any::AnyValueRef<'r>,
            ) -> ::std::result::Result<Self, ::sqlx::error::BoxDynError> {
                let text =
                    <::std::string::String as ::sqlx::Decode<'r, ::sqlx::Any>>::decode(value)?;
                text.parse::<$type>()
                    .map_err(|e| ::std::format!("stored {text:?}: {e}").into())
            }
        }
    };
}
pub(crate) use text_column;
