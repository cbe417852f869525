//! Alibaba-style paging: 1-based page numbers, page sizes 1 to 100.

use super::error::{KmsError, KmsResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub number: usize,
    pub size: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub total: usize,
    pub page: Page,
}

impl Page {
    pub const DEFAULT_SIZE: usize = 10;
    pub const MAX_SIZE: usize = 100;

    /// Zero means "not given" (proto3 default).
    pub fn from_request(number: i32, size: i32) -> KmsResult<Page> {
        let number = match number {
            0 => 1,
            n if n > 0 => n as usize,
            _ => return Err(KmsError::invalid("PageNumber")),
        };
        let size = match size {
            0 => Self::DEFAULT_SIZE,
            s if s > 0 && s as usize <= Self::MAX_SIZE => s as usize,
            _ => return Err(KmsError::invalid_because("PageSize", "It must be between 1 and 100.")),
        };
        Ok(Page { number, size })
    }

    /// The page of `all`, which must already be in its stable order.
    pub fn slice<T>(self, all: Vec<T>) -> Paged<T> {
        let total = all.len();
        let start = (self.number - 1).saturating_mul(self.size);
        let items = all.into_iter().skip(start).take(self.size).collect();
        Paged { items, total, page: self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_through_in_order() {
        let page = Page::from_request(2, 3).unwrap();
        let paged = page.slice((1..=8).collect::<Vec<_>>());
        assert_eq!(paged.items, vec![4, 5, 6]);
        assert_eq!(paged.total, 8);
        assert!(Page::from_request(0, 101).is_err());
        assert!(Page::from_request(-1, 10).is_err());
        assert_eq!(Page::from_request(0, 0).unwrap(), Page { number: 1, size: 10 });
    }
}
