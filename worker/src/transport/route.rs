//! Which node a call tries first: the last leader seen, else the next node in rotation.
//! Shared by every call of one client (under the transport's lock), so a leader one call
//! learned is the first node the next call tries.

/// The nodes a client knows and the leader it last saw.
#[derive(Debug)]
pub(crate) struct Route {
    nodes: Vec<String>,
    /// The last leader seen, tried first.
    leader: Option<String>,
    /// Index of the next node to try when the leader is unknown.
    next: usize,
}

impl Route {
    pub fn new(nodes: Vec<String>) -> Route {
        assert!(!nodes.is_empty(), "a route needs at least one node");
        Route {
            nodes,
            leader: None,
            next: 0,
        }
    }

    /// The node to try first: the known leader, else the next in rotation.
    pub fn pick(&mut self) -> String {
        if let Some(leader) = &self.leader {
            return leader.clone();
        }
        let node = self.nodes[self.next % self.nodes.len()].clone();
        self.next = (self.next + 1) % self.nodes.len();
        node
    }

    pub fn forget_leader(&mut self) {
        self.leader = None;
    }

    pub fn remember_leader(&mut self, addr: &str) {
        self.leader = Some(addr.trim_end_matches('/').to_owned());
    }

    #[cfg(test)]
    pub fn leader(&self) -> Option<&str> {
        self.leader.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route() -> Route {
        Route::new(vec![
            "http://a".into(),
            "http://b".into(),
            "http://c".into(),
        ])
    }

    #[test]
    fn rotates_while_no_leader_is_known() {
        let mut r = route();
        let picks: Vec<String> = (0..4).map(|_| r.pick()).collect();
        assert_eq!(picks, ["http://a", "http://b", "http://c", "http://a"]);
    }

    #[test]
    fn a_known_leader_is_tried_first_until_forgotten() {
        let mut r = route();
        assert_eq!(r.pick(), "http://a");
        r.remember_leader("http://c/");
        assert_eq!(r.pick(), "http://c");
        assert_eq!(r.pick(), "http://c");
        r.forget_leader();
        // Rotation resumes where it stopped.
        assert_eq!(r.pick(), "http://b");
    }

    #[test]
    #[should_panic(expected = "at least one node")]
    fn no_nodes_is_a_bug() {
        Route::new(Vec::new());
    }
}
