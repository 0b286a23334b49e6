"""fxvae hardware side: Amaranth generators and board builds."""
