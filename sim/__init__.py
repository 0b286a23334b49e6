"""fxvae co-simulation: cocotb testbenches and runners for the generated Verilog."""
