//! An RFC 6962 / RFC 9162 Merkle tree over transaction hashes, with SHA3-256:
//!
//! ```text
//! leaf  = H(0x00 ‖ data)            node = H(0x01 ‖ left ‖ right)
//! MTH(D[n]) = H(0x01 ‖ MTH(D[0:k]) ‖ MTH(D[k:n])),  k the largest power of two below n
//! ```
//!
//! The tree is kept as its complete subtrees: node `(level, index)` is the root of leaves
//! `[index·2^level, (index+1)·2^level)`. Appending a leaf adds at most `log2 n` nodes (the
//! [`Frontier`] tells which); any subtree hash, hence any root, inclusion proof or
//! consistency proof, is then `O(log n)` node reads ([`Nodes`]). The verifiers need only
//! hashes, so a client can check a proof offline.

use sha3::{Digest, Sha3_256};

/// A SHA3-256 hash.
pub type Hash = [u8; 32];

/// `H(0x00 ‖ data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha3_256::new();
    h.update([0x00]);
    h.update(data);
    h.finalize().into()
}

/// `H(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha3_256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: `H()`.
pub fn empty_root() -> Hash {
    Sha3_256::digest([]).into()
}

/// Where complete subtree hashes are read from.
pub trait Nodes {
    /// The error reading a node.
    type Error;
    /// The root of leaves `[index·2^level, (index+1)·2^level)`, which must be complete.
    fn node(&self, level: u32, index: u64) -> Result<Hash, Self::Error>;
}

fn largest_power_of_two_below(n: u64) -> u64 {
    debug_assert!(n > 1);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// `MTH(D[start:end])` for `start < end`, where `start` is a multiple of the largest power
/// of two not above `end - start` (true of every range the RFC's recursions visit).
pub fn subtree<N: Nodes>(nodes: &N, start: u64, end: u64) -> Result<Hash, N::Error> {
    let size = end - start;
    if size.is_power_of_two() && start.is_multiple_of(size) {
        return nodes.node(size.trailing_zeros(), start / size);
    }
    let k = largest_power_of_two_below(size);
    Ok(node_hash(
        &subtree(nodes, start, start + k)?,
        &subtree(nodes, start + k, end)?,
    ))
}

/// The root of the first `size` leaves.
pub fn root<N: Nodes>(nodes: &N, size: u64) -> Result<Hash, N::Error> {
    if size == 0 {
        return Ok(empty_root());
    }
    subtree(nodes, 0, size)
}

/// The audit path of leaf `index` in the tree of `size` leaves (RFC 6962 `PATH`).
pub fn inclusion_proof<N: Nodes>(nodes: &N, index: u64, size: u64) -> Result<Vec<Hash>, N::Error> {
    let mut out = Vec::new();
    path(nodes, index, 0, size, &mut out)?;
    Ok(out)
}

fn path<N: Nodes>(
    nodes: &N,
    m: u64,
    start: u64,
    end: u64,
    out: &mut Vec<Hash>,
) -> Result<(), N::Error> {
    let n = end - start;
    if n <= 1 {
        return Ok(());
    }
    let k = largest_power_of_two_below(n);
    if m < k {
        path(nodes, m, start, start + k, out)?;
        out.push(subtree(nodes, start + k, end)?);
    } else {
        path(nodes, m - k, start + k, end, out)?;
        out.push(subtree(nodes, start, start + k)?);
    }
    Ok(())
}

/// The proof that the tree of `old_size` leaves is a prefix of the tree of `new_size`
/// (RFC 6962 `PROOF`).
pub fn consistency_proof<N: Nodes>(
    nodes: &N,
    old_size: u64,
    new_size: u64,
) -> Result<Vec<Hash>, N::Error> {
    let mut out = Vec::new();
    if old_size == 0 || old_size >= new_size {
        return Ok(out);
    }
    subproof(nodes, old_size, 0, new_size, true, &mut out)?;
    Ok(out)
}

fn subproof<N: Nodes>(
    nodes: &N,
    m: u64,
    start: u64,
    end: u64,
    whole: bool,
    out: &mut Vec<Hash>,
) -> Result<(), N::Error> {
    let n = end - start;
    if m == n {
        if !whole {
            out.push(subtree(nodes, start, end)?);
        }
        return Ok(());
    }
    let k = largest_power_of_two_below(n);
    if m <= k {
        subproof(nodes, m, start, start + k, whole, out)?;
        out.push(subtree(nodes, start + k, end)?);
    } else {
        subproof(nodes, m - k, start + k, end, false, out)?;
        out.push(subtree(nodes, start, start + k)?);
    }
    Ok(())
}

/// Checks an inclusion proof (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == *root
}

/// Checks a consistency proof (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old_size > new_size {
        return false;
    }
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    if old_size == 0 {
        return proof.is_empty();
    }
    if proof.is_empty() {
        return false;
    }
    let mut proof = proof.to_vec();
    if old_size.is_power_of_two() {
        proof.insert(0, *old_root);
    }
    let (mut f, mut s) = (old_size - 1, new_size - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (proof[0], proof[0]);
    for c in &proof[1..] {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && fr == *old_root && sr == *new_root
}

/// The right edge of the tree: one complete subtree per set bit of the size, largest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    /// Leaves in the tree.
    pub size: u64,
    /// `(level, hash)` of the complete subtrees on the right edge, highest level first.
    pub edge: Vec<(u32, Hash)>,
}

impl Frontier {
    /// The frontier of a tree of `size` leaves, read from its nodes.
    pub fn load<N: Nodes>(nodes: &N, size: u64) -> Result<Frontier, N::Error> {
        let mut edge = Vec::new();
        let mut start = 0u64;
        for level in (0..64u32).rev() {
            if size & (1u64 << level) != 0 {
                edge.push((level, nodes.node(level, start >> level)?));
                start += 1u64 << level;
            }
        }
        Ok(Frontier { size, edge })
    }

    /// Appends a leaf; returns the nodes that became complete, `(level, index, hash)`,
    /// the leaf itself first.
    pub fn append(&mut self, leaf: Hash) -> Vec<(u32, u64, Hash)> {
        let index = self.size;
        let mut created = vec![(0, index, leaf)];
        let mut carry = (0u32, leaf);
        while let Some(&(level, left)) = self.edge.last() {
            if level != carry.0 {
                break;
            }
            self.edge.pop();
            let h = node_hash(&left, &carry.1);
            let new_level = level + 1;
            created.push((new_level, index >> new_level, h));
            carry = (new_level, h);
        }
        self.edge.push(carry);
        self.size += 1;
        created
    }

    /// The root of the tree.
    pub fn root(&self) -> Hash {
        let mut iter = self.edge.iter().rev();
        let Some(&(_, mut acc)) = iter.next() else {
            return empty_root();
        };
        for (_, h) in iter {
            acc = node_hash(h, &acc);
        }
        acc
    }
}

/// Complete subtrees held in memory (for tests and offline tools).
#[derive(Debug, Default, Clone)]
pub struct MemoryNodes {
    levels: Vec<Vec<Hash>>,
}

impl MemoryNodes {
    /// Stores nodes returned by [`Frontier::append`].
    pub fn insert(&mut self, created: &[(u32, u64, Hash)]) {
        for &(level, index, h) in created {
            let l = level as usize;
            if self.levels.len() <= l {
                self.levels.resize(l + 1, Vec::new());
            }
            let v = &mut self.levels[l];
            if v.len() as u64 <= index {
                v.resize(index as usize + 1, [0; 32]);
            }
            v[index as usize] = h;
        }
    }
}

impl Nodes for MemoryNodes {
    type Error = String;

    fn node(&self, level: u32, index: u64) -> Result<Hash, String> {
        self.levels
            .get(level as usize)
            .and_then(|v| v.get(index as usize))
            .copied()
            .ok_or_else(|| format!("no node ({level}, {index})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The RFC's recursive definition, for comparison.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = largest_power_of_two_below(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    fn build(n: u64) -> (Vec<Hash>, MemoryNodes, Vec<Hash>) {
        let mut f = Frontier::default();
        let mut nodes = MemoryNodes::default();
        let mut leaves = Vec::new();
        let mut roots = vec![empty_root()];
        for i in 0..n {
            let leaf = leaf_hash(&i.to_be_bytes());
            leaves.push(leaf);
            nodes.insert(&f.append(leaf));
            roots.push(f.root());
        }
        (leaves, nodes, roots)
    }

    proptest! {
        #[test]
        fn frontier_roots_match_the_rfc_definition(n in 0u64..70) {
            let (leaves, nodes, roots) = build(n);
            for size in 0..=n {
                prop_assert_eq!(roots[size as usize], mth(&leaves[..size as usize]));
                prop_assert_eq!(root(&nodes, size).unwrap(), roots[size as usize]);
                prop_assert_eq!(Frontier::load(&nodes, size).unwrap().root(), roots[size as usize]);
            }
        }

        #[test]
        fn inclusion_proofs_verify_and_catch_changes(n in 1u64..70, seed in any::<u64>()) {
            let (leaves, nodes, roots) = build(n);
            let size = seed % n + 1;
            let index = (seed >> 8) % size;
            let proof = inclusion_proof(&nodes, index, size).unwrap();
            let root = roots[size as usize];
            prop_assert!(verify_inclusion(index, size, &leaves[index as usize], &proof, &root));
            prop_assert!(proof.len() as u32 <= 64 - (size.max(2) - 1).leading_zeros());
            let mut forged = proof.clone();
            if let Some(first) = forged.first_mut() {
                first[0] ^= 1;
                prop_assert!(!verify_inclusion(index, size, &leaves[index as usize], &forged, &root));
            }
            prop_assert!(!verify_inclusion(index, size, &leaf_hash(b"other"), &proof, &root));
            if size > 1 {
                prop_assert!(!verify_inclusion((index + 1) % size, size, &leaves[index as usize], &proof, &root));
            }
        }

        #[test]
        fn consistency_proofs_verify_and_catch_rewrites(n in 1u64..70, seed in any::<u64>()) {
            let (_, nodes, roots) = build(n);
            let new = seed % n + 1;
            let old = (seed >> 8) % new + 1;
            let proof = consistency_proof(&nodes, old, new).unwrap();
            prop_assert!(verify_consistency(old, new, &roots[old as usize], &roots[new as usize], &proof));
            if old < new {
                let mut fake = roots[old as usize];
                fake[5] ^= 0x40;
                prop_assert!(!verify_consistency(old, new, &fake, &roots[new as usize], &proof));
                prop_assert!(!verify_consistency(old, new, &roots[old as usize], &fake, &proof));
            }
        }
    }
}
