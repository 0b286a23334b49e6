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
1. Offer ``cmd`` words, one per job; they are taken while earlier jobs are
   still in flight, up to :attr:`hw.plan.CorePlan.queue_depth` jobs ahead
   of the output (``cmd.ready`` low means that many are in flight).
2. For modes 0, 1, 3 offer each job's ``input_dim`` words on ``i``, jobs in
   command order (the words may come before, with or after the command:
   ``i.ready`` stays low while no commanded job still owes input, so words
   are never taken for a job that was not commanded).  Mode 2 takes no input.
3. Collect words on ``o``: each job's words in command order, its last one
   with ``last``.

Images are pipelined through the layers (FINN's dataflow style): every layer
works on its own image, so jobs of one mode leave every ``ii`` clocks, the
slowest stage's period (:func:`hw.estimate.stage_periods`), not the sum of
the layers' times.  Any sequence of modes may follow; a stage that serves
only some modes (the latent unit, the decoder) simply sees fewer jobs.
All of ``valid`` on ``o`` and ``ready`` on ``i``/``cmd`` follow the stream
rules (no ``valid`` waits for ``ready``).  A reset drops every job in
flight (queues, counters, buffers' slot pointers, the sampler's LFSRs).

Datapath: ``i`` -> encoder ``Dense`` layers -> head (``2L`` words) ->
``encode``: straight to ``o``; otherwise -> :class:`hw.latent.LatentUnit`
(``eps`` from the sampler in modes 1, 2; 0 in mode 0) -> decoder ``Dense``
layers -> :class:`hw.arith.TaylorSigmoid` -> ``o``.  ``generate`` never
touches the encoder: a zero source feeds the latent unit ``2L`` zeros
(``mu = 0``, ``sigma = sigma_rom(0) = 1.0``), bit-exactly
:meth:`model.golden.GoldenModel.run` ``("generate")``.

Job order: a command pushes a record into one :class:`hw.streamutil.RegisterFifo`
per stage that needs to know the job's mode -- the head's router (to ``o``
for ``encode``, else to the latent unit), the latent unit's merge (the
head's words, or ``2L`` zeros for ``generate``, each word tagged with the
job's ``sample`` flag) and the output merge (the head or the sigmoid) --
and each stage pops it after the job's last word.  Stages see jobs in
command order, so an ``encode`` job's head words wait until every earlier
job has left ``o``.

Bit-exactness: every block equals its :mod:`model.fixed` function; the
sampler's draws are transferred in order and only for sampling jobs, so the
``k``-th draw since reset is ``Sampler(spec).draw`` 's ``k``-th value.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from model.fixed import MODES, SAMPLING_MODES

from .arith import TaylorSigmoid
from .cost import counter
from .dense import Dense
from .estimate import estimate
from .latent import LatentUnit
from .plan import CorePlan
from .streamutil import RegisterFifo, RegisterSlice

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


def _last_word(m: Module, n: int, transfer, name: str) -> Signal:
    """Counts the words of ``n``-word vectors as they transfer; returns a register that
    is high on each vector's last word, so a queue's pop needs no comparator."""
    word = counter(n, name=f"{name}_word")
    last = Signal(init=n == 1, name=f"{name}_last")
    with m.If(transfer):
        m.d.sync += [word.eq(Mux(last, 0, word + 1)),
                     last.eq(Mux(last, n == 1, word == n - 2))]
    return last


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
        return dict(self.estimate().latency)

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

        # ---- job control: one queue per stage, in job order ------------------
        # A command pushes one record into the queue of every stage its job passes:
        # the input gate (a count is enough), the head's router, the latent unit's
        # merge (head words or generate's zeros) and the output merge.  Each stage pops
        # its record after the job's last word has passed it, so jobs overlap across
        # the layers while each stage sees them in command order.
        depth = plan.queue_depth
        m.submodules.head_q = head_q = RegisterFifo(depth, unsigned(1))      # encode?
        m.submodules.latent_q = latent_q = RegisterFifo(
            depth, data.StructLayout({"from_head": 1, "sample": 1}))
        m.submodules.out_q = out_q = RegisterFifo(depth, unsigned(1))        # encode?
        cmd_mode = self.cmd.payload.mode
        takes_image = cmd_mode != Mode.generate
        encodes = cmd_mode == Mode.encode
        # out_q holds every job in flight and the others a subset: its room is theirs
        m.d.comb += [
            self.cmd.ready.eq(out_q.i.ready),
            out_q.i.payload.eq(encodes),
            head_q.i.payload.eq(encodes),
            latent_q.i.payload.from_head.eq(takes_image),
            latent_q.i.payload.sample.eq(cmd_mode.as_value().matches(
                *(Mode[name] for name in SAMPLING_MODES))),
        ]
        accept = self.cmd.valid & self.cmd.ready
        m.d.comb += [
            out_q.i.valid.eq(accept),
            head_q.i.valid.eq(accept & takes_image),
            latent_q.i.valid.eq(accept & ~encodes),
        ]

        # ---- input: input_dim words per image job, in command order ----------
        images_due = counter(depth + 1)    # image jobs whose input has not all arrived
        in_word = counter(art.input_dim)
        enc0 = encoder[0]
        m.d.comb += [
            enc0.i.payload.eq(self.i.payload),
            enc0.i.valid.eq(self.i.valid & (images_due != 0)),
            self.i.ready.eq(enc0.i.ready & (images_due != 0)),
        ]
        image_done = Signal()
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += in_word.eq(Mux(in_word == art.input_dim - 1, 0, in_word + 1))
            m.d.comb += image_done.eq(in_word == art.input_dim - 1)
        m.d.sync += images_due.eq(images_due + (accept & takes_image) - image_done)

        # ---- head -> o (encode) or -> latent; generate's zeros -> latent --------
        # the head's vector belongs to head_q's first job; it goes to o when that is
        # the oldest job still owed output (out_q's first is an encode job), to the
        # latent unit when it is the oldest owed a latent vector
        to_out = out_q.o.valid & out_q.o.payload
        to_latent = (head_q.o.valid & ~head_q.o.payload
                     & latent_q.o.valid & latent_q.o.payload.from_head)
        m.d.comb += head.o.ready.eq(Mux(to_out, out.ready, to_latent & latent.i.ready))
        head_last = _last_word(m, 2 * L, head.o.valid & head.o.ready, "head")
        m.d.comb += head_q.o.ready.eq(head.o.valid & head.o.ready & head_last)

        from_head = latent_q.o.payload.from_head
        m.d.comb += [
            latent.i.valid.eq(latent_q.o.valid & Mux(from_head, head.o.valid & to_latent, 1)),
            latent.i.payload.data.eq(Mux(from_head, head.o.payload, 0)),
            latent.i.payload.sample.eq(latent_q.o.payload.sample),
        ]
        latent_last = _last_word(m, 2 * L, latent.i.valid & latent.i.ready, "latent")
        m.d.comb += latent_q.o.ready.eq(latent.i.valid & latent.i.ready & latent_last)

        # ---- output, in command order -------------------------------------------
        out_max = max(art.input_dim, 2 * L)
        out_word = counter(out_max)
        last_word = Mux(out_q.o.payload, 2 * L - 1, art.input_dim - 1)
        m.d.comb += [
            out.valid.eq(out_q.o.valid & Mux(out_q.o.payload, head.o.valid, sigmoid.o.valid)),
            out.payload.data.eq(Mux(out_q.o.payload, head.o.payload, sigmoid.o.payload)),
            out.payload.last.eq(out_word == last_word),
            sigmoid.o.ready.eq(out_q.o.valid & ~out_q.o.payload & out.ready),
        ]
        with m.If(out.valid & out.ready):
            m.d.sync += out_word.eq(Mux(out_word == last_word, 0, out_word + 1))
            m.d.comb += out_q.o.ready.eq(out_word == last_word)
        return m
