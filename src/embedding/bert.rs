//! The forward pass of a BERT encoder (MiniLM and its kin), on the CPU with candle: token,
//! position and segment embeddings, `num_hidden_layers` blocks of self-attention and a
//! GELU feed-forward, each closed by a residual and a layer norm, as Hugging Face's
//! `BertModel` computes it. Only inference: no dropout, no gradients.

use candle_core::{D, DType, Device, Module, Result, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear, VarBuilder};

/// The shape of the network, from the model's `config.json`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct BertShape {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab_size")]
    pub type_vocab_size: usize,
    #[serde(default = "default_layer_norm_eps")]
    pub layer_norm_eps: f64,
}

fn default_type_vocab_size() -> usize {
    2
}

fn default_layer_norm_eps() -> f64 {
    1e-12
}

struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

/// The loaded network.
pub struct Bert {
    words: Embedding,
    positions: Embedding,
    segments: Embedding,
    embeddings_norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    head_size: usize,
}

fn norm(size: usize, eps: f64, vb: VarBuilder) -> Result<LayerNorm> {
    // Checkpoints of this age name the parameters `gamma`/`beta` or `weight`/`bias`.
    let (weight, bias) = if vb.contains_tensor("gamma") {
        (vb.get(size, "gamma")?, vb.get(size, "beta")?)
    } else {
        (vb.get(size, "weight")?, vb.get(size, "bias")?)
    };
    Ok(LayerNorm::new(weight, bias, eps))
}

impl Bert {
    /// The network from `vb`'s tensors (with or without a `bert.` prefix).
    pub fn load(vb: VarBuilder, shape: &BertShape) -> Result<Bert> {
        let vb = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") { vb.pp("bert") } else { vb };
        let (h, eps) = (shape.hidden_size, shape.layer_norm_eps);
        let e = vb.pp("embeddings");
        let words = candle_nn::embedding(shape.vocab_size, h, e.pp("word_embeddings"))?;
        let positions = candle_nn::embedding(shape.max_position_embeddings, h, e.pp("position_embeddings"))?;
        let segments = candle_nn::embedding(shape.type_vocab_size, h, e.pp("token_type_embeddings"))?;
        let embeddings_norm = norm(h, eps, e.pp("LayerNorm"))?;
        let layers = (0..shape.num_hidden_layers)
            .map(|i| {
                let l = vb.pp(format!("encoder.layer.{i}"));
                let a = l.pp("attention");
                Ok(Layer {
                    query: candle_nn::linear(h, h, a.pp("self.query"))?,
                    key: candle_nn::linear(h, h, a.pp("self.key"))?,
                    value: candle_nn::linear(h, h, a.pp("self.value"))?,
                    attention_out: candle_nn::linear(h, h, a.pp("output.dense"))?,
                    attention_norm: norm(h, eps, a.pp("output.LayerNorm"))?,
                    intermediate: candle_nn::linear(h, shape.intermediate_size, l.pp("intermediate.dense"))?,
                    output: candle_nn::linear(shape.intermediate_size, h, l.pp("output.dense"))?,
                    output_norm: norm(h, eps, l.pp("output.LayerNorm"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let heads = shape.num_attention_heads;
        Ok(Bert { words, positions, segments, embeddings_norm, layers, heads, head_size: h / heads })
    }

    /// The last hidden state, `(batch, tokens, hidden)`, for token ids `(batch, tokens)`
    /// whose padding `mask` (1 for a token, 0 for padding, as f32) hides from attention.
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (batch, tokens) = ids.dims2()?;
        let device = ids.device();
        let positions = Tensor::arange(0u32, tokens as u32, device)?.unsqueeze(0)?;
        let segments = ids.zeros_like()?;
        let x = self.words.forward(ids)?.broadcast_add(&self.positions.forward(&positions)?)?;
        let mut x = self.embeddings_norm.forward(&(x + self.segments.forward(&segments)?)?)?;
        // Padding gets a large negative score before the softmax: (batch, 1, 1, tokens).
        let bias = ((mask.ones_like()? - mask)? * -1e9)?.reshape((batch, 1, 1, tokens))?;
        for layer in &self.layers {
            x = self.layer(layer, &x, &bias)?;
        }
        Ok(x)
    }

    fn layer(&self, layer: &Layer, x: &Tensor, bias: &Tensor) -> Result<Tensor> {
        let (batch, tokens, hidden) = x.dims3()?;
        let split = |t: Tensor| -> Result<Tensor> {
            t.reshape((batch, tokens, self.heads, self.head_size))?.transpose(1, 2)?.contiguous()
        };
        let q = split(layer.query.forward(x)?)?;
        let k = split(layer.key.forward(x)?)?;
        let v = split(layer.value.forward(x)?)?;
        let scores = (q.matmul(&k.t()?.contiguous()?)? / (self.head_size as f64).sqrt())?.broadcast_add(bias)?;
        let weights = candle_nn::ops::softmax_last_dim(&scores)?;
        let context = weights.matmul(&v)?.transpose(1, 2)?.reshape((batch, tokens, hidden))?;
        let x = layer.attention_norm.forward(&(x + layer.attention_out.forward(&context)?)?)?;
        let h = layer.intermediate.forward(&x)?.gelu_erf()?;
        layer.output_norm.forward(&(x.clone() + layer.output.forward(&h)?)?)
    }
}

/// Mean of the hidden states over the real tokens, then scaled to unit length, so a dot
/// product of two vectors is their cosine: `(batch, hidden)`.
pub fn mean_pool_normalized(hidden: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let mask = mask.to_dtype(DType::F32)?.unsqueeze(D::Minus1)?;
    let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
    let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
    let mean = summed.broadcast_div(&counts)?;
    let length = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
    mean.broadcast_div(&length)
}

/// The CPU, the one device casebridge runs models on.
pub fn cpu() -> Device {
    Device::Cpu
}
