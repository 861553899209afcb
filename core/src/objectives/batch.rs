//! A batch as host-side token ids, padded into rectangles, then moved to a device.

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::models::ModelInputs;
use crate::nn::loss::IGNORE_INDEX;

/// `[batch][seq]` rows, all of one length per field.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    pub input_ids: Vec<Vec<i64>>,
    /// 1 = token, 0 = padding; `None` = no padding.
    pub attention_mask: Option<Vec<Vec<i64>>>,
    pub decoder_input_ids: Option<Vec<Vec<i64>>>,
    /// `IGNORE_INDEX` where there is no target.
    pub labels: Option<Vec<Vec<i64>>>,
}

impl Batch {
    /// Number of label positions that are targets.
    pub fn num_targets(&self) -> usize {
        self.labels.iter().flatten().flatten().filter(|&&l| l != IGNORE_INDEX).count()
    }

    /// Rank `rank`'s rows of `world` equal shares (data parallelism); `world` divides the rows.
    pub fn shard(&self, rank: usize, world: usize) -> Batch {
        let n = self.input_ids.len() / world;
        let rows = |v: &Vec<Vec<i64>>| v[rank * n..(rank + 1) * n].to_vec();
        Batch {
            input_ids: rows(&self.input_ids),
            attention_mask: self.attention_mask.as_ref().map(rows),
            decoder_input_ids: self.decoder_input_ids.as_ref().map(rows),
            labels: self.labels.as_ref().map(rows),
        }
    }

    /// The batch as tensors on `device`.
    pub fn to_inputs(&self, device: &Device) -> ModelInputs {
        let mut inputs = ModelInputs::new(int_tensor(&self.input_ids, device));
        inputs.attention_mask = self.attention_mask.as_ref().map(|m| int_tensor(m, device));
        inputs.decoder_input_ids = self.decoder_input_ids.as_ref().map(|m| int_tensor(m, device));
        inputs.labels = self.labels.as_ref().map(|m| int_tensor(m, device));
        inputs
    }
}

/// Rows of equal length to an `[rows, len]` tensor.
pub fn int_tensor(rows: &[Vec<i64>], device: &Device) -> Tensor<2, Int> {
    let len = rows.first().map_or(0, Vec::len);
    assert!(rows.iter().all(|r| r.len() == len), "rows of a batch must have one length");
    let flat: Vec<i64> = rows.iter().flatten().copied().collect();
    crate::readback::note_upload(flat.len() * std::mem::size_of::<i64>());
    Tensor::from_data(TensorData::new(flat, [rows.len(), len]), device)
}

/// Right-pads each row to the longest with `pad`; returns the rows and the attention mask.
pub fn pad_rows(rows: &[Vec<i64>], pad: i64) -> (Vec<Vec<i64>>, Vec<Vec<i64>>) {
    let len = rows.iter().map(Vec::len).max().unwrap_or(0);
    let padded =
        rows.iter().map(|r| r.iter().copied().chain(std::iter::repeat_n(pad, len - r.len())).collect()).collect();
    let mask = rows.iter().map(|r| (0..len).map(|i| (i < r.len()) as i64).collect()).collect();
    (padded, mask)
}
