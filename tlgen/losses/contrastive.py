"""Timescale contrastive loss (paper eq. 1-2): NT-Xent over cosine similarities of
masked latent codes, one term per gap band.

Formulation. A batch holds B anchors and P positives; positive p is a frame of the
same video as anchor a_p whose time gap to it lies in gap band j_p, and band j is
paired with a mask level `levels[j]` (the number of slow bins kept). Every frame is
encoded once. `contrastive_loss` takes one positive per (anchor, band) (P = B*K);
`pair_contrastive_loss` any list of pairs (e.g. one band per anchor, to save work).
For pair p the logits are the masked cosine similarities sim(w_a, w_c, levels[j_p]) / tau
against the columns c = all B anchors and all P positives of the (global) batch, except

* anchor a_p itself and its other positives (other views of the same moment: neither
  positives nor honest negatives for this band), and
* positives that do not exist (`pos_valid` False), in every row.

The loss of pair p is -log softmax at its positive's column; each band averages over
its valid pairs; the total is the weighted mean over bands that have any valid pair.

Masked similarities for all levels come from one set of per-bin Gram matrices
G_b = W_b W_c^T and their cumulative sums over b (one full Gram's worth of
multiply-adds, not one per level), with squared norms accumulated the same way.
Under jit with batch-sharded codes only the embeddings are all-gathered (the
columns); the Gram rows stay sharded, and only the small (K, B, N) similarity table is
gathered before the per-pair softmax.
"""

from __future__ import annotations

from typing import Sequence

import einops
import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P


def masked_similarities(rows: jax.Array, cols: jax.Array, levels: Sequence[int],
                        eps: float = 1e-12) -> jax.Array:
    """Cosine similarities of masked codes for several mask levels.

    rows (R, M, ...), cols (C, M, ...): codes with the bin axis second.
    levels: bins kept per output level (each in 1..M).
    Returns (len(levels), R, C) float32: [l, r, c] = cos(mask(rows[r], k), mask(cols[c], k))
    with k = levels[l] (0 where a masked code is all zeros).
    """
    r = rows.reshape(rows.shape[:2] + (-1,)).astype(jnp.float32)
    c = cols.reshape(cols.shape[:2] + (-1,)).astype(jnp.float32)
    grams = jnp.einsum("rmd,cmd->mrc", r, c)                  # per-bin Gram matrices
    idx = jnp.asarray(levels, jnp.int32) - 1
    dots = jnp.cumsum(grams, axis=0)[idx]                      # (L, R, C)
    row_sq = jnp.cumsum(jnp.sum(r * r, axis=-1), axis=1)[:, idx].T     # (L, R)
    col_sq = jnp.cumsum(jnp.sum(c * c, axis=-1), axis=1)[:, idx].T     # (L, C)
    denom = jnp.sqrt(jnp.maximum(row_sq[:, :, None] * col_sq[:, None, :], eps))
    return dots / denom


def contrastive_loss(anchor_w: jax.Array, positive_w: jax.Array, pos_valid: jax.Array,
                     *, levels: Sequence[int], temperature: float = 0.1,
                     band_weights: Sequence[float] | None = None):
    """Timescale NT-Xent loss with one positive per (anchor, band) (see module docstring).

    anchor_w: (B, M, h, w, c) codes of the anchors.
    positive_w: (B, K, M, h, w, c) codes of the positives, band j in [:, j].
    pos_valid: (B, K) bool.
    levels: K ints, bins kept for band j's similarity.
    Returns (loss, per_band) with per_band (K,) float32 (0 for an empty band).
    """
    b, k = pos_valid.shape
    if len(levels) != k:
        raise ValueError(f"levels has {len(levels)} entries but pos_valid has {k} gap bands; give "
                         "one per band.")
    return pair_contrastive_loss(
        anchor_w, einops.rearrange(positive_w, "b k ... -> (b k) ..."),
        jnp.repeat(jnp.arange(b), k), jnp.tile(jnp.arange(k), b), pos_valid.reshape(-1),
        levels=levels, temperature=temperature, band_weights=band_weights)


def pair_contrastive_loss(anchor_w: jax.Array, positive_w: jax.Array, pos_anchor: jax.Array,
                          pos_band: jax.Array, pos_valid: jax.Array, *, levels: Sequence[int],
                          temperature: float = 0.1,
                          band_weights: Sequence[float] | None = None):
    """Timescale NT-Xent loss over a list of positive pairs.

    anchor_w: (B, M, h, w, c); positive_w: (P, M, h, w, c), positive p pairs with anchor
    pos_anchor[p] in gap band pos_band[p] and exists where pos_valid[p]. Columns are the
    B anchors followed by the P positives; a pair's row excludes its anchor, the anchor's
    other positives and invalid positives (module docstring).
    Returns (loss, per_band (K,)) with K = len(levels).
    """
    b, p, k = anchor_w.shape[0], positive_w.shape[0], len(levels)
    m = anchor_w.shape[1]
    if any(not 1 <= int(level) <= m for level in levels):
        raise ValueError(f"levels {tuple(levels)} must each keep 1..{m} bins (the codes have {m}).")
    # Negatives come from the whole global batch: gather the embeddings (only).
    cols = jnp.concatenate([_replicated(anchor_w), _replicated(positive_w)], axis=0)
    pos_anchor, pos_band = _replicated(pos_anchor), _replicated(pos_band)
    col_valid = jnp.concatenate([jnp.ones((b,), bool), _replicated(pos_valid).astype(bool)])
    sims = masked_similarities(anchor_w, cols, levels) / temperature       # (K, B, N)
    logits = _replicated(sims)[pos_band, pos_anchor]                        # (P, N), small

    col = jnp.arange(b + p)[None, :]
    col_anchor = jnp.concatenate([jnp.arange(b), pos_anchor])[None, :]      # owner of a column
    is_pos = col == (b + jnp.arange(p))[:, None]
    allowed = (col_valid[None, :] & (col_anchor != pos_anchor[:, None])) | is_pos
    per_pair = jax.nn.logsumexp(jnp.where(allowed, logits, -jnp.inf), axis=-1) - jnp.sum(
        jnp.where(is_pos, logits, 0.0), axis=-1)                            # (P,)
    in_band = (pos_band[None, :] == jnp.arange(k)[:, None]) & pos_valid[None, :].astype(bool)
    count = jnp.sum(in_band, axis=1).astype(jnp.float32)
    per_band = jnp.sum(jnp.where(in_band, per_pair[None, :], 0.0), axis=1) / jnp.maximum(count, 1.0)
    weights = jnp.ones((k,)) if band_weights is None else jnp.asarray(band_weights, jnp.float32)
    weights = weights * (count > 0)
    loss = jnp.sum(weights * per_band) / jnp.maximum(jnp.sum(weights), 1e-12)
    return loss, per_band


def _replicated(x: jax.Array) -> jax.Array:
    """x gathered to every device when the current mesh has explicit axes; under
    auto sharding XLA inserts the same all-gather itself."""
    mesh = jax.sharding.get_abstract_mesh()
    if not mesh.empty and mesh.explicit_axes:
        return jax.sharding.reshard(x, P())
    return x
