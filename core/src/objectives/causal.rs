//! Causal LM: documents packed into fixed-length blocks, separated by EOS, with no padding; the
//! labels are the inputs (the model shifts them, as HF's causal-LM heads do).

use super::Batch;

/// Packs a stream of documents into blocks of `block_size` tokens. Each document is followed by
/// `eos`; a document longer than a block continues into the next; the tail that does not fill a
/// block waits for the next document.
#[derive(Clone, Debug)]
pub struct BlockPacker {
    block_size: usize,
    eos: u32,
    pending: Vec<u32>,
}

impl BlockPacker {
    pub fn new(block_size: usize, eos: u32) -> Self {
        assert!(block_size > 0, "block_size must be positive");
        Self { block_size, eos, pending: Vec::new() }
    }

    /// Adds one document and returns the blocks it completed.
    pub fn push(&mut self, document: &[u32]) -> Vec<Vec<u32>> {
        self.pending.extend_from_slice(document);
        self.pending.push(self.eos);
        let full = self.pending.len() / self.block_size * self.block_size;
        let blocks = self.pending[..full].chunks(self.block_size).map(<[u32]>::to_vec).collect();
        self.pending.drain(..full);
        blocks
    }

    /// Tokens waiting for a block to fill.
    pub fn pending(&self) -> &[u32] {
        &self.pending
    }
}

/// A causal-LM batch from equal-length blocks: `input_ids = labels = block`.
pub fn causal_batch(blocks: &[Vec<u32>]) -> Batch {
    let rows: Vec<Vec<i64>> = blocks.iter().map(|b| b.iter().map(|&t| t as i64).collect()).collect();
    Batch { input_ids: rows.clone(), attention_mask: None, decoder_input_ids: None, labels: Some(rows) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_documents_with_eos_into_full_blocks() {
        let docs: Vec<Vec<u32>> = vec![vec![10, 11, 12], vec![20], vec![30, 31, 32, 33, 34, 35, 36], vec![40, 41]];
        let mut packer = BlockPacker::new(4, 0);
        let blocks: Vec<Vec<u32>> = docs.iter().flat_map(|d| packer.push(d)).collect();
        assert!(blocks.iter().all(|b| b.len() == 4));
        let stream: Vec<u32> = blocks.iter().flatten().chain(packer.pending()).copied().collect();
        let expected: Vec<u32> = docs.iter().flat_map(|d| d.iter().copied().chain([0])).collect();
        assert_eq!(stream, expected, "blocks + pending are the documents joined by EOS");
        assert_eq!(blocks[0], vec![10, 11, 12, 0]);
        assert_eq!(blocks[1], vec![20, 0, 30, 31]);

        let batch = causal_batch(&blocks);
        assert_eq!(batch.input_ids, batch.labels.clone().unwrap());
        assert_eq!(batch.num_targets(), blocks.len() * 4);
    }
}
