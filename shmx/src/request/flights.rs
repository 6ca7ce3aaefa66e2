//! The requests a client has in flight, by number: a table indexed by the number's low bits
//! (numbers are consecutive, so requests in flight mostly sit in places of their own), and a
//! map for the few that land on the place of an older one still in flight. On the path of
//! every request: no hashing in the common case.

use super::IdMap;

pub(super) struct Flights<V> {
    slots: Vec<Option<(u64, V)>>,
    mask: usize,
    spill: IdMap<V>,
    len: usize,
}

impl<V> Flights<V> {
    /// A table for about `n` requests in flight.
    pub(super) fn with_capacity(n: usize) -> Flights<V> {
        let size = n.saturating_mul(2).next_power_of_two().max(8);
        Flights {
            slots: (0..size).map(|_| None).collect(),
            mask: size - 1,
            spill: IdMap::default(),
            len: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    fn place(&self, id: u64) -> usize {
        id as usize & self.mask
    }

    /// Records request `id` (not in flight yet).
    pub(super) fn insert(&mut self, id: u64, value: V) {
        let i = self.place(id);
        match &self.slots[i] {
            None => self.slots[i] = Some((id, value)),
            Some((held, _)) => {
                debug_assert_ne!(*held, id, "request {id} is in flight already");
                self.spill.insert(id, value);
            }
        }
        self.len += 1;
    }

    pub(super) fn get(&self, id: &u64) -> Option<&V> {
        match &self.slots[self.place(*id)] {
            Some((held, v)) if held == id => Some(v),
            _ => self.spill.get(id),
        }
    }

    pub(super) fn get_mut(&mut self, id: &u64) -> Option<&mut V> {
        let i = self.place(*id);
        match &mut self.slots[i] {
            Some((held, v)) if held == id => Some(v),
            _ => self.spill.get_mut(id),
        }
    }

    pub(super) fn remove(&mut self, id: &u64) -> Option<V> {
        let i = self.place(*id);
        let got = match &self.slots[i] {
            Some((held, _)) if held == id => self.slots[i].take().map(|(_, v)| v),
            _ => self.spill.remove(id),
        };
        if got.is_some() {
            self.len -= 1;
        }
        got
    }
}

#[cfg(test)]
mod tests {
    use super::Flights;

    #[test]
    fn requests_that_share_a_place_are_kept_apart() {
        let mut f = Flights::with_capacity(2); // 8 places
        for id in [1u64, 9, 17, 2] {
            f.insert(id, id * 10);
        }
        assert_eq!(f.len(), 4);
        assert_eq!(
            (f.get(&9), f.get(&17), f.get(&3)),
            (Some(&90), Some(&170), None)
        );
        *f.get_mut(&17).unwrap() += 1;
        assert_eq!(f.remove(&1), Some(10));
        assert_eq!(f.remove(&1), None);
        assert_eq!(f.get(&17), Some(&171));
        assert_eq!(f.remove(&9), Some(90));
        assert_eq!(f.len(), 2);
        f.insert(25, 250); // the place of 1 is free again
        assert_eq!(f.get(&25), Some(&250));
        assert_eq!(f.len(), 3);
    }
}
