"""fxvae model side: data, float reference VAE, numerics spec, quantization, golden model."""
