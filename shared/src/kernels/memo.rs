//! A value a module computes from its own parameters before it meets an
//! input (a convolution's kernel with its batch norm folded in, its taps
//! transformed), kept between calls in eval mode on flex.
//!
//! The value is kept with the tensors it was computed from, and given back
//! only while the module's tensors are those same ones: the same buffers,
//! seen through the same layouts. Nothing else can change a parameter in
//! place, since the memo holds a reference to each buffer, and flex copies a
//! shared buffer before it writes (`flex_values::owned`): a loaded or
//! fine-tuned model, an optimizer step, `valid()` or `load_record` all give
//! new buffers, and the value is computed afresh. On autodiff devices and
//! GPUs nothing is kept: the value is computed at every call, as without a
//! memo.

use std::sync::{Arc, Mutex};

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::prelude::*;
use burn::tensor::DType;

/// One value and the tensors it was computed from; see the module documentation.
pub struct Memo<T>(Mutex<Option<(Vec<FlexTensor>, T)>>);

/// Whether a value is kept, not the tensors it holds.
impl<T> std::fmt::Debug for Memo<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let entry = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let kept = entry.is_some();
        f.write_str(if kept { "Memo(kept)" } else { "Memo(empty)" })
    }
}

impl<T> Default for Memo<T> {
    fn default() -> Self {
        Memo(Mutex::new(None))
    }
}

/// A copy keeps the value: it is checked against the copy's tensors anyway.
impl<T: Clone> Clone for Memo<T> {
    fn clone(&self) -> Self {
        Memo(Mutex::new(self.entry().clone()))
    }
}

impl<T: Clone> Memo<T> {
    /// The value computed from `keys` where it can be kept (every key an f32
    /// tensor on flex off autodiff): kept from an earlier call with these
    /// same tensors, else `compute`d and kept. `None` elsewhere, where the
    /// caller computes what it needs as it would without a memo.
    pub fn get(&self, keys: &[Key], compute: impl FnOnce() -> T) -> Option<T> {
        let keys = keys
            .iter()
            .map(|k| k.0.clone())
            .collect::<Option<Vec<_>>>()?;
        let mut entry = self.entry();
        if let Some((kept, value)) = entry.as_ref()
            && kept.len() == keys.len()
            && kept.iter().zip(&keys).all(|(a, b)| same(a, b))
        {
            return Some(value.clone());
        }
        // Drop what was kept before computing: its buffers go at once.
        *entry = None;
        let value = compute();
        *entry = Some((keys, value.clone()));
        Some(value)
    }

    /// How many values are kept (0 or 1): for tests.
    pub fn kept(&self) -> usize {
        usize::from(self.entry().is_some())
    }

    fn entry(&self) -> std::sync::MutexGuard<'_, Option<(Vec<FlexTensor>, T)>> {
        // A panic while computing leaves nothing half-written: the entry was
        // emptied first.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A tensor as a memo's key: `None` where nothing is kept (autodiff, a GPU,
/// another float type).
#[derive(Clone, Debug)]
pub struct Key(Option<FlexTensor>);

impl Key {
    /// `t` as a key.
    pub fn of<const D: usize>(t: &Tensor<D>) -> Self {
        let flex = t
            .clone()
            .try_into_primitive::<Flex>()
            .ok()
            .filter(|t| t.dtype() == DType::F32);
        Key(flex)
    }

    /// A key that no value is kept for.
    pub fn none() -> Self {
        Key(None)
    }
}

/// The same buffer through the same layout.
fn same(a: &FlexTensor, b: &FlexTensor) -> bool {
    Arc::ptr_eq(&a.data_arc(), &b.data_arc()) && a.layout() == b.layout()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn keeps_a_value_while_its_tensors_are_the_same_ones() {
        let device = Device::flex();
        let a = Tensor::<1>::from_floats([1.0, 2.0], &device);
        let b = Tensor::<2>::from_floats([[3.0]], &device);
        let memo = Memo::<f32>::default();
        let computed = Cell::new(0);
        let sum = |a: &Tensor<1>, b: &Tensor<2>| {
            memo.get(&[Key::of(a), Key::of(b)], || {
                computed.set(computed.get() + 1);
                a.clone().sum().into_scalar::<f32>() + b.clone().sum().into_scalar::<f32>()
            })
            .expect("kept on flex")
        };
        assert_eq!(sum(&a, &b), 6.0);
        assert_eq!(sum(&a.clone(), &b.clone()), 6.0);
        assert_eq!(computed.get(), 1, "a clone shares the buffer");
        // Equal values in a new buffer, a view of the same one, new values.
        let a2 = Tensor::<1>::from_floats([1.0, 2.0], &device);
        assert_eq!(sum(&a2, &b), 6.0);
        assert_eq!(computed.get(), 2);
        assert_eq!(sum(&a2.clone().narrow(0, 1, 1), &b), 5.0);
        assert_eq!(sum(&(a2 + 1.0), &b), 8.0);
        assert_eq!(computed.get(), 4);
        assert_eq!(memo.kept(), 1);
        assert_eq!(format!("{memo:?}"), "Memo(kept)", "not its tensors");
        assert_eq!(format!("{:?}", Memo::<f32>::default()), "Memo(empty)");
    }

    #[test]
    fn keeps_nothing_on_autodiff_or_in_another_float_type() {
        let device = Device::flex();
        let memo = Memo::<usize>::default();
        let tracked =
            Tensor::<1>::from_floats([1.0, 2.0], &device.clone().autodiff()).require_grad();
        let half =
            Tensor::<1>::from_floats([1.0, 2.0], &device).cast(burn::tensor::FloatDType::F16);
        for key in [Key::of(&tracked), Key::of(&half)] {
            assert_eq!(memo.get(&[key], || unreachable!("not computed")), None);
        }
        assert_eq!(memo.kept(), 0);
    }
}
