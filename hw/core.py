"""``VAECore``: the whole quantized VAE as one stream component.

Ports (Verilog names in brackets; ``clk``/``rst`` are the sync domain)
---------------------------------------------------------------------
``cmd`` : ``In(stream.Signature(StructLayout({"mode": Mode})))``
    [``cmd__payload[1:0]``, ``cmd__valid``, ``cmd__ready``].  ``mode`` is
    :class:`Mode` (``amaranth.lib.enum``, 2 bits), whose code is the index into
    :data:`model.fixed.MODES`: 0 ``recon_mu``, 1 ``recon_sample``,
    2 ``generate``, 3 ``encode``.
``i`` : ``In(stream.Signature(signed(input_fmt.width)))``
    [``i__payload``, ``i__valid``, ``i__ready``].  ``input_dim`` words per
    image, only for the modes that take one (all but ``generate``).
``o`` : ``Out(stream.Signature(StructLayout({"data": signed(W), "last": 1})))``
    [``o__payload``: ``data`` in bits ``[W-1:0]``, ``last`` in bit ``W``].
    ``input_dim`` sigmoid outputs (``sigmoid.out_fmt``) for the
    reconstruct/generate modes; ``2L`` head outputs ``[mu..., logvar...]``
    (head ``out_fmt``) for ``encode``; ``data`` is sign-extended to
    ``W = max`` of the two widths.  ``last`` marks a job's final word.

Protocol (what a driver does)
-----------------------------
1. Offer a ``cmd``; it is taken when the core is idle (``cmd.ready`` is
   high exactly when no job is running).
2. For modes 0, 1, 3 offer the image's ``input_dim`` words on ``i`` (before,
   with or after the command: ``i.ready`` stays low until the command is
   taken and after the job's ``input_dim``-th word, so words of the next
   image are never swallowed by this job).  Mode 2 takes no input.
3. Collect words on ``o`` until one with ``last``.  The job ends at that
   transfer; the next ``cmd`` is taken one clock later at the earliest.

One job at a time keeps the protocol (and the sampler's draw order) trivial;
it costs nothing in latency and little in throughput because every layer
already overlaps with its producer *within* an image, and the idle time
between jobs is one clock.  All of ``valid`` on ``o`` and ``ready`` on
``i``/``cmd`` follow the stream rules (no ``valid`` waits for ``ready``).

Datapath: ``i`` -> encoder ``Dense`` layers -> head (``2L`` words) ->
``encode``: straight to ``o``; otherwise -> :class:`hw.latent.LatentUnit`
(``eps`` from the sampler in modes 1, 2; 0 in mode 0) -> decoder ``Dense``
layers -> :class:`hw.arith.TaylorSigmoid` -> ``o``.  ``generate`` never
touches the encoder: a zero source feeds the latent unit ``2L`` zeros
(``mu = 0``, ``sigma = sigma_rom(0) = 1.0``), bit-exactly
:meth:`model.golden.GoldenModel.run` ``("generate")``.

Bit-exactness: every block equals its :mod:`model.fixed` function; the
sampler's draws are transferred in order and only for sampling jobs, so the
``k``-th draw since reset is ``Sampler(spec).draw`` 's ``k``-th value.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from model.fixed import MODES

from .arith import TaylorSigmoid
from .cost import counter
from .dense import Dense
from .estimate import estimate
from .latent import LatentUnit
from .plan import CorePlan
from .streamutil import RegisterSlice

__all__ = ["Mode", "MODE_CODES", "IMAGE_MODES", "VAECore", "cmd_layout", "out_layout"]


def _mode_enum() -> type[enum.Enum]:
    """``Mode``: one member per :data:`model.fixed.MODES` entry (same name, code = its
    index), shape ``unsigned(2)``; built from the list so the two cannot disagree
    (a fifth mode fails here: it does not fit the 2-bit ``cmd`` payload)."""
    bases = (enum.Enum,)
    namespace = enum.EnumType.__prepare__("Mode", bases, shape=unsigned(2))
    namespace.update({"__module__": __name__, "__qualname__": "Mode"})
    for code, name in enumerate(MODES):
        namespace[name] = code
    return enum.EnumType("Mode", bases, namespace, shape=unsigned(2))


#: The code on ``cmd.payload.mode``: ``Mode.encode``, ``Mode["recon_mu"]``, ...
Mode = _mode_enum()
#: Mode name -> the 2-bit code (as ``fxvae.json`` lists it).
MODE_CODES: dict[str, int] = {mode.name: mode.value for mode in Mode}
#: Modes whose job reads an image from ``i`` (all but ``generate``, which draws its z).
IMAGE_MODES = tuple(mode for mode in MODES if mode != "generate")


def cmd_layout() -> data.StructLayout:
    return data.StructLayout({"mode": Mode})


def out_layout(width: int) -> data.StructLayout:
    return data.StructLayout({"data": signed(width), "last": unsigned(1)})


class VAECore(wiring.Component):
    """The VAE core built from a :class:`hw.plan.CorePlan`.

    Build the plan first (``core_plan(artifact, lanes, ...)``): it checks the
    knobs and says what the core will cost before any hardware exists.
    """

    def __init__(self, plan: CorePlan):
        if not isinstance(plan, CorePlan):
            raise TypeError(f"VAECore takes a hw.plan.CorePlan (see core_plan), not {plan!r}")
        self.plan = plan
        self.artifact = plan.artifact
        self.out_width = plan.out_width
        super().__init__({
            "cmd": In(stream.Signature(cmd_layout())),
            "i": In(stream.Signature(signed(self.artifact.input_fmt.width))),
            "o": Out(stream.Signature(out_layout(self.out_width))),
        })

    @property
    def lanes(self) -> list[int]:
        return self.plan.lanes

    def estimate(self):
        """The analytic model (:func:`hw.estimate.estimate`) for this configuration."""
        return estimate(self.plan)

    @property
    def latency(self) -> dict[str, int]:
        """Per mode: clocks from the ``cmd`` transfer to the last ``o`` transfer of one
        image, input offered densely and ``o`` always ready (from the analytic model)."""
        return {mode: cycles - 1 for mode, cycles in self.estimate().cycles.items()}

    def elaborate(self, platform):
        m = Module()
        art, plan = self.artifact, self.plan
        L = art.latent_dim
        encoder = [Dense(p, art.weights[p.spec.name], art.biases[p.spec.name])
                   for p in plan.encoder]
        decoder = [Dense(p, art.weights[p.spec.name], art.biases[p.spec.name])
                   for p in plan.decoder]
        latent = LatentUnit(plan)
        sigmoid = TaylorSigmoid(art.sigmoid, serial=plan.sigmoid.serial,
                                mult_width=plan.mult_width)
        for k, unit in enumerate(encoder):
            m.submodules[f"enc{k}_{unit.spec.name}"] = unit
        for k, unit in enumerate(decoder):
            m.submodules[f"dec{k}_{unit.spec.name}"] = unit
        m.submodules.latent = latent
        m.submodules.sigmoid = sigmoid
        for a, b in zip(encoder, encoder[1:]):
            wiring.connect(m, a.o, b.i)
        for a, b in zip(decoder, decoder[1:]):
            wiring.connect(m, a.o, b.i)
        wiring.connect(m, latent.o, decoder[0].i)
        wiring.connect(m, decoder[-1].o, sigmoid.i)
        head = encoder[-1]

        # o leaves through a register slice: every port's handshake is a register on the
        # core's side, and the consumer's ready reaches no internal logic
        m.submodules.out_slice = out_slice = RegisterSlice(self.o.payload.shape())
        wiring.connect(m, wiring.flipped(self.o), out_slice.o)
        out = out_slice.i

        # ---- job control ---------------------------------------------------
        busy = Signal()
        mode = Signal(Mode)
        sample = Signal()   # the job draws eps (a register: the latent unit's join reads it)
        is_encode = Signal()
        is_generate = Signal()
        m.d.comb += [
            is_encode.eq(mode == Mode.encode),
            is_generate.eq(mode == Mode.generate),
            self.cmd.ready.eq(~busy),
            latent.sample.eq(sample),
        ]
        in_left = counter(art.input_dim + 1)
        gen_left = counter(2 * L + 1)
        out_max = max(art.input_dim, 2 * L)
        out_left = counter(out_max + 1)
        with m.If(self.cmd.valid & self.cmd.ready):
            cmd_mode = self.cmd.payload.mode
            takes_image = cmd_mode != Mode.generate
            m.d.sync += [
                busy.eq(1),
                mode.eq(cmd_mode),
                sample.eq((cmd_mode == Mode.recon_sample) | (cmd_mode == Mode.generate)),
                in_left.eq(Mux(takes_image, art.input_dim, 0)),
                gen_left.eq(Mux(takes_image, 0, 2 * L)),
                out_left.eq(Mux(cmd_mode == Mode.encode, 2 * L, art.input_dim)),
            ]

        # ---- input: exactly input_dim words per image job -------------------
        enc0 = encoder[0]
        m.d.comb += [
            enc0.i.payload.eq(self.i.payload),
            enc0.i.valid.eq(self.i.valid & (in_left != 0)),
            self.i.ready.eq(enc0.i.ready & (in_left != 0)),
        ]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += in_left.eq(in_left - 1)

        # ---- head -> o (encode) or -> latent; zero source for generate ------
        with m.If(is_generate):
            m.d.comb += [latent.i.valid.eq(gen_left != 0), latent.i.payload.eq(0)]
            with m.If(latent.i.valid & latent.i.ready):
                m.d.sync += gen_left.eq(gen_left - 1)
        with m.Else():
            m.d.comb += [
                latent.i.valid.eq(head.o.valid & ~is_encode),
                latent.i.payload.eq(head.o.payload),
            ]
        m.d.comb += head.o.ready.eq(busy & Mux(is_encode, out.ready,
                                               latent.i.ready & ~is_generate))

        # ---- output ----------------------------------------------------------
        m.d.comb += [
            out.valid.eq(busy & Mux(is_encode, head.o.valid, sigmoid.o.valid)),
            out.payload.data.eq(Mux(is_encode, head.o.payload, sigmoid.o.payload)),
            out.payload.last.eq(out_left == 1),
            sigmoid.o.ready.eq(busy & out.ready & ~is_encode),
        ]
        with m.If(out.valid & out.ready):
            m.d.sync += out_left.eq(out_left - 1)
            with m.If(out_left == 1):
                m.d.sync += busy.eq(0)
        return m
