"""Training losses (pure JAX): contrastive, reconstruction (MS-SSIM, L1), adversarial."""
