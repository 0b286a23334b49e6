"""The latent unit: head outputs ``[mu | logvar]`` in, ``z`` out.

Per image the unit takes ``2L`` words on ``i`` -- first the ``L`` means
(stored in ``L`` registers), then the ``L`` log-variances -- and emits ``L``
words ``z_d = reparam(mu_d, sigma_rom(logvar_d), eps_d)`` on ``o``, in
dimension order, as the log-variances stream in (no wait for the whole
vector, so the decoder's first layer overlaps with it).

Datapath for one logvar word::

    logvar_d --> RegisterSlice ---------------+
    mu[d_out] (register mux) -----------------+--> join --> RegisterSlice
    eps: GaussianSampler.o  if sample else 0 -+
      --> SigmaRom (3 clk: index, ROM, sigma) --> Reparam (3 clk) --> RegisterSlice --> z_d

``eps`` comes from the sampler only when the word's ``sample`` flag is high
(modes ``recon_sample`` and ``generate``); otherwise it is 0 and the sampler
is *not* advanced, so the sampler's draws are consumed in order, image-major
and dimension-minor, over the sampling jobs only -- exactly what
:class:`model.golden.Sampler` does.  The join transfers when a log-variance
word is on ``i``, the sampler has a draw (if needed) and the slice has room.

The sampler is free-running and primed
``SamplerPlan.primed`` clocks after reset (a serial sampler's buffer then
holds ``latent_dim`` draws); a draw requested earlier just waits (the join
stalls), so correctness never depends on priming, only the cycle count does.

Generate mode needs no special path: the core feeds ``2L`` zero words, so
``mu = 0`` and ``sigma = sigma_rom(0)``, which is exactly 1.0.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from model.fixed import Span

from .arith import Ranged, reparam_product, reparam_stages, sigma_rom_stages
from .cost import counter
from .plan import CorePlan
from .sampler import GaussianSampler
from .streamutil import Pipeline, RegisterSlice

__all__ = ["LatentUnit"]


class LatentUnit(wiring.Component):
    """``[mu | logvar]`` words in, ``z`` words out; see the module docstring.

    Members
    -------
    i : ``In(stream.Signature(StructLayout({"data": signed(head.out_fmt.width), "sample": 1})))``
        ``2 * latent_dim`` words per image; ``sample`` (1: eps from the Gaussian
        sampler, 0: eps = 0 and the sampler untouched) travels with every word, so
        consecutive images of different modes may follow each other through the unit.
    o : ``Out(stream.Signature(signed(z_fmt.width)))``
        ``latent_dim`` words per image.
    """

    def __init__(self, plan: CorePlan):
        artifact = plan.artifact
        self.plan = plan
        self.artifact = artifact
        self.latent_dim = artifact.latent_dim
        mu_fmt = artifact.mu_fmt
        if artifact.sigma_rom.logvar_fmt != mu_fmt:
            raise ValueError(f"sigma ROM logvar format {artifact.sigma_rom.logvar_fmt} != "
                             f"encoder head output format {mu_fmt}")
        self.latency = plan.latent_latency
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({"data": signed(mu_fmt.width),
                                                         "sample": 1}))),
            "o": Out(stream.Signature(signed(artifact.z_fmt.width))),
        })

    def elaborate(self, platform):
        m = Module()
        art, L = self.artifact, self.latent_dim
        m.submodules.sampler = smp = GaussianSampler(self.plan.sampler)

        mus = [Signal(signed(art.mu_fmt.width), name=f"mu{d}") for d in range(L)]
        n_in = counter(2 * L)  # word index on i
        d_out = counter(L)     # dimension of the next log-variance
        in_mu = Signal(init=1)  # n_in < L, kept as a register: it gates the join below

        mu_sel = Signal.like(mus[0])
        with m.Switch(d_out):
            for d in range(L - 1):
                with m.Case(d):
                    m.d.comb += mu_sel.eq(mus[d])
            with m.Default():  # d_out never exceeds L-1; a default keeps the case complete
                m.d.comb += mu_sel.eq(mus[L - 1])

        # a log-variance word joins its mu and its eps (the sampler's next draw, or 0)
        # between two register slices: every input of the join is a register, and the
        # pipeline's stall stops at the join's slice (on the iCE40 the join behind the
        # stall, then the core's generate-mode word valid in front of it, were the
        # critical paths); the output slice stops the decoder's ready
        m.submodules.head_slice = head_slice = RegisterSlice(self.i.payload.shape())
        wiring.connect(m, wiring.flipped(self.i), head_slice.i)
        head = head_slice.o
        entry_layout = data.StructLayout({"logvar": signed(art.mu_fmt.width),
                                          "mu": signed(art.mu_fmt.width),
                                          "eps": signed(art.sampler.eps_fmt.width)})
        m.submodules.in_slice = in_slice = RegisterSlice(entry_layout)
        m.submodules.out_slice = out_slice = RegisterSlice(self.o.payload.shape())
        wiring.connect(m, wiring.flipped(self.o), out_slice.o)
        join = in_slice.i
        sample = head.payload.sample
        eps_ok = ~sample | smp.o.valid
        m.d.comb += [
            join.valid.eq(head.valid & ~in_mu & eps_ok),
            head.ready.eq(in_mu | (eps_ok & join.ready)),
            smp.o.ready.eq(sample & head.valid & ~in_mu & join.ready),
            join.payload.logvar.eq(head.payload.data),
            join.payload.mu.eq(mu_sel),
            join.payload.eps.eq(Mux(sample, smp.o.payload, 0)),
        ]

        # one pipeline: sigma read for the log-variance, then the reparameterization
        entry = in_slice.o
        pipe = Pipeline(m, entry.valid, name="lat")
        m.d.comb += entry.ready.eq(pipe.advance)
        sigma, mu, eps = sigma_rom_stages(
            m, pipe, Ranged(entry.payload.logvar, Span.of_fmt(art.mu_fmt)), art.sigma_rom,
            (Ranged(entry.payload.mu, Span.of_fmt(art.mu_fmt)), "mu"),
            (Ranged(entry.payload.eps, Span.of_fmt(art.sampler.eps_fmt)), "eps"))
        z = reparam_stages(pipe, mu, sigma, eps, art.reparam,
                           reparam_product(art.reparam, self.plan.mult_width))
        pipe.finish(out_slice.i)
        m.d.comb += out_slice.i.payload.eq(z.value)

        with m.If(head.valid & head.ready):
            m.d.sync += [n_in.eq(Mux(n_in == 2 * L - 1, 0, n_in + 1)),
                         in_mu.eq((n_in == 2 * L - 1) | (n_in + 1 < L))]
            with m.If(in_mu):
                for d in range(L):
                    with m.If(n_in == d):
                        m.d.sync += mus[d].eq(head.payload.data)
        with m.If(join.valid & join.ready):
            m.d.sync += d_out.eq(Mux(d_out == L - 1, 0, d_out + 1))
        return m
