//! The kernels' row loops: threaded by rayon natively; in the browser (wasm32, one thread, where
//! rayon would only add its scheduler to the module) the same loops run in order over std's chunk
//! iterators. The kernels call `par_chunks`/`par_chunks_mut` and the iterator methods both share.

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use rayon::prelude::*;

#[cfg(target_arch = "wasm32")]
pub(crate) trait ParallelSlice<T> {
    fn par_chunks(&self, size: usize) -> std::slice::Chunks<'_, T>;
}

#[cfg(target_arch = "wasm32")]
impl<T> ParallelSlice<T> for [T] {
    fn par_chunks(&self, size: usize) -> std::slice::Chunks<'_, T> {
        self.chunks(size)
    }
}

#[cfg(target_arch = "wasm32")]
pub(crate) trait ParallelSliceMut<T> {
    fn par_chunks_mut(&mut self, size: usize) -> std::slice::ChunksMut<'_, T>;
}

#[cfg(target_arch = "wasm32")]
impl<T> ParallelSliceMut<T> for [T] {
    fn par_chunks_mut(&mut self, size: usize) -> std::slice::ChunksMut<'_, T> {
        self.chunks_mut(size)
    }
}
