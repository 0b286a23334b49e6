"""The latent unit: head outputs ``[mu | logvar]`` in, ``z`` out.

Per image the unit takes ``2L`` words on ``i`` -- first the ``L`` means
(stored in ``L`` registers), then the ``L`` log-variances -- and emits ``L``
words ``z_d = reparam(mu_d, sigma_rom(logvar_d), eps_d)`` on ``o``, in
dimension order, as the log-variances stream in (no wait for the whole
vector, so the decoder's first layer overlaps with it).

Datapath for one logvar word::

    logvar_d --> SigmaRom (1 clk) --+
                                    +--> join --> Reparam (2 clk) --> z_d
    mu[d_out] (register mux) -------+
    eps: GaussianSampler.o  if sample else 0

``eps`` comes from the sampler only when the ``sample`` input is high
(modes ``recon_sample`` and ``generate``); otherwise it is 0 and the sampler
is *not* advanced, so the sampler's draws are consumed in order, image-major
and dimension-minor, over the sampling jobs only -- exactly what
:class:`model.golden.Sampler` does.  The join transfers when the sigma ROM
has a result, the sampler has a draw (if needed) and the Reparam accepts.

``sample`` must be held stable while an image is in the unit (the core
drives it from its mode register).  The sampler is free-running and primed
``SamplerPlan.primed`` clocks after reset (a serial sampler's buffer then
holds ``latent_dim`` draws); a draw requested earlier just waits (the join
stalls), so correctness never depends on priming, only the cycle count does.

Generate mode needs no special path: the core feeds ``2L`` zero words, so
``mu = 0`` and ``sigma = sigma_rom(0)``, which is exactly 1.0.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .arith import Reparam, SigmaRom
from .cost import counter
from .plan import CorePlan
from .sampler import GaussianSampler

__all__ = ["LatentUnit"]


class LatentUnit(wiring.Component):
    """``[mu | logvar]`` words in, ``z`` words out; see the module docstring.

    Members
    -------
    i : ``In(stream.Signature(signed(head.out_fmt.width)))``
        ``2 * latent_dim`` words per image.
    o : ``Out(stream.Signature(signed(z_fmt.width)))``
        ``latent_dim`` words per image.
    sample : ``In(1)``
        1: eps from the Gaussian sampler; 0: eps = 0 (sampler untouched).
    """

    def __init__(self, plan: CorePlan):
        artifact = plan.artifact
        self.artifact = artifact
        self.latent_dim = artifact.latent_dim
        mu_fmt = artifact.mu_fmt
        if artifact.sigma_rom.logvar_fmt != mu_fmt:
            raise ValueError(f"sigma ROM logvar format {artifact.sigma_rom.logvar_fmt} != "
                             f"encoder head output format {mu_fmt}")
        self.sigma_rom = SigmaRom(artifact.sigma_rom)
        self.sampler = GaussianSampler(plan.sampler)
        self.reparam = Reparam(artifact.reparam, mult_width=plan.mult_width)
        self.latency = plan.latent_latency
        super().__init__({
            "i": In(stream.Signature(signed(mu_fmt.width))),
            "o": Out(stream.Signature(signed(artifact.z_fmt.width))),
            "sample": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        L = self.latent_dim
        m.submodules.sigma_rom = rom = self.sigma_rom
        m.submodules.sampler = smp = self.sampler
        m.submodules.reparam = rep = self.reparam

        mus = [Signal(signed(self.artifact.mu_fmt.width), name=f"mu{d}") for d in range(L)]
        n_in = counter(2 * L)  # word index on i
        d_out = counter(L)     # dimension of the next join
        in_mu = Signal()
        m.d.comb += in_mu.eq(n_in < L)

        # i: means into registers, log-variances into the sigma ROM
        m.d.comb += [
            rom.i.payload.eq(self.i.payload),
            rom.i.valid.eq(self.i.valid & ~in_mu),
            self.i.ready.eq(Mux(in_mu, 1, rom.i.ready)),
        ]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += n_in.eq(Mux(n_in == 2 * L - 1, 0, n_in + 1))
            with m.If(in_mu):
                for d in range(L):
                    with m.If(n_in == d):
                        m.d.sync += mus[d].eq(self.i.payload)

        # join sigma, mu, eps -> reparam
        mu_sel = Signal.like(mus[0])
        with m.Switch(d_out):
            for d in range(L - 1):
                with m.Case(d):
                    m.d.comb += mu_sel.eq(mus[d])
            with m.Default():  # d_out never exceeds L-1; a default keeps the case complete
                m.d.comb += mu_sel.eq(mus[L - 1])
        eps_ok = Signal()
        m.d.comb += [
            eps_ok.eq(~self.sample | smp.o.valid),
            rep.i.valid.eq(rom.o.valid & eps_ok),
            rom.o.ready.eq(rep.i.ready & eps_ok),
            smp.o.ready.eq(self.sample & rom.o.valid & rep.i.ready),
            rep.i.payload.mu.eq(mu_sel),
            rep.i.payload.sigma.eq(rom.o.payload),
            rep.i.payload.eps.eq(Mux(self.sample, smp.o.payload, 0)),
        ]
        with m.If(rep.i.valid & rep.i.ready):
            m.d.sync += d_out.eq(Mux(d_out == L - 1, 0, d_out + 1))

        wiring.connect(m, wiring.flipped(self.o), rep.o)
        return m
