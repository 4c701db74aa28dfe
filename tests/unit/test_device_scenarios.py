"""The device-management spec's GIVEN/WHEN/THEN scenarios, one named test each."""

from __future__ import annotations

import attrs
import pytest

from actorhw import DeviceState, Gpio, I2c, Runtime, SharingPolicy, Spi, Uart
from actorhw.core.errors import (
    AlreadyOpenedError,
    DeviceBusyError,
    NoSuchDeviceError,
    NotOpenedError,
    NotOwnerError,
    StaleLeaseError,
    WrongKindError,
)
from actorhw.core.messages import Lease

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def same70(sim_runtime: Runtime) -> type:
    return sim_runtime.ids("same70-xplained")


@pytest.fixture
def microbit(sim_runtime: Runtime) -> type:
    return sim_runtime.ids("microbit")


def test_single_device_acquired_exclusively(sim_runtime: Runtime, same70: type) -> None:
    rt = sim_runtime
    first = rt.acquire(same70.UART0, owner="module-a")
    assert rt.info(same70.UART0).owners_count == 1
    with pytest.raises(DeviceBusyError) as busy:
        rt.acquire(same70.UART0, owner="module-b")
    assert busy.value.code == "device_or_resource_busy"
    assert busy.value.owners == ("module-a",)
    assert busy.value.owners_count == 1
    assert "module-a" in str(busy.value)
    assert rt.info(same70.UART0).owners_count == 1
    rt.release(first)


def test_shared_device_acquired_by_three_owners(sim_runtime: Runtime, microbit: type) -> None:
    rt = sim_runtime
    leases = []
    for expected, owner in enumerate(("sensor-a", "sensor-b", "sensor-c"), start=1):
        leases.append(rt.acquire(microbit.PIN0, owner=owner))
        assert rt.info(microbit.PIN0).owners_count == expected
    assert rt.info(microbit.PIN0).owners == ("sensor-a", "sensor-b", "sensor-c")
    for lease in leases:
        rt.release(lease)


def test_release_decrements_owner_count(sim_runtime: Runtime, microbit: type) -> None:
    rt = sim_runtime
    leases = [rt.acquire(microbit.PIN1, owner=f"o{i}") for i in range(3)]
    assert [rt.release(lease) for lease in leases] == [2, 1, 0]
    # available for new acquisition
    again = rt.acquire(microbit.PIN1, owner="new")
    assert rt.info(microbit.PIN1).owners == ("new",)
    rt.release(again)


def test_uart_single_policy_refuses_module_b_at_once(sim_runtime: Runtime, same70: type) -> None:
    rt = sim_runtime
    with (
        rt.lease(Uart, same70.UART0, owner="module-a"),
        pytest.raises(DeviceBusyError, match="held by module-a"),
    ):
        rt.lease(Uart, same70.UART0, owner="module-b", timeout=1.0)


def test_gpio_shared_policy_two_readers(sim_runtime: Runtime, microbit: type) -> None:
    rt = sim_runtime
    with (
        rt.lease(Gpio, microbit.PIN2, owner="sensor-a") as a,
        rt.lease(Gpio, microbit.PIN2, owner="sensor-b") as b,
    ):
        a.write(True)
        assert a.read() is True
        assert b.read() is True
        assert a.info().open_count == 2


def test_policy_cannot_be_changed_after_construction(sim_runtime: Runtime, same70: type) -> None:
    info = sim_runtime.info(same70.UART0)
    assert info.policy is SharingPolicy.SINGLE
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        info.policy = SharingPolicy.SHARED  # type: ignore[misc]
    import actorhw.messages as messages

    # No message can carry a new policy to a device: only listings mention it (the
    # cluster's HostDevice and LeaseRecord are a host's listing and a lease record).
    carriers = [
        name
        for name, cls in vars(messages).items()
        if attrs.has(cls) and "policy" in attrs.fields_dict(cls)
    ]
    assert sorted(carriers) == ["DeviceInfo", "HostDevice", "LeaseRecord", "RegistryEntry"]
    assert sim_runtime.info(same70.UART0).policy is SharingPolicy.SINGLE


def test_cannot_use_device_before_opening(sim_runtime: Runtime, same70: type) -> None:
    uart = sim_runtime.get(Uart, same70.UART1).acquire("module-a")
    with pytest.raises(NotOpenedError) as e:
        uart.write(b"x")
    assert e.value.code == "operation_not_permitted"
    assert "device not opened - call open() first" in str(e.value)
    assert uart.info().open_count == 0
    assert uart.info().state is DeviceState.CONNECTED
    uart.release()


def test_device_lifecycle_in_correct_order(sim_runtime: Runtime, same70: type) -> None:
    uart = sim_runtime.get(Uart, same70.UART2)
    uart.acquire("module-a")
    assert uart.info().owners_count == 1
    uart.open()
    assert uart.info().open_count == 1
    assert uart.info().state is DeviceState.ACTIVE
    assert uart.write(b"ok") == 2
    uart.close()
    assert uart.info().open_count == 0
    assert uart.info().state is DeviceState.CONNECTED
    assert uart.release() == 0


def test_cannot_open_already_opened_device(sim_runtime: Runtime, same70: type) -> None:
    with sim_runtime.lease(Uart, same70.UART0, owner="module-a") as uart:
        uart.write(b"kept")
        before = uart.info()
        with pytest.raises(AlreadyOpenedError) as e:
            uart.open()
        assert e.value.code == "device_already_opened"
        assert uart.info() == before
        assert uart.read(4) == b"kept"  # no side effects: still open, data kept


def test_registry_initialised_with_board_devices(sim_runtime: Runtime, same70: type) -> None:
    names = {i.device.name for i in sim_runtime.devices("same70-xplained")}
    assert names == {
        "UART0", "UART1", "UART2", "LED_GREEN", "LED_RED", "LED_BLUE", "I2C0", "I2C1",
        "I2C2", "SPI0", "SPI1", "ADC0", "DAC0", "PWM0",
    }  # fmt: skip
    for device in same70:
        assert sim_runtime.info(device).device is device


def test_type_safe_device_retrieval(sim_runtime: Runtime, same70: type) -> None:
    assert isinstance(sim_runtime.get(Uart, same70.UART0), Uart)
    assert type(sim_runtime.get(same70.UART0)) is Uart
    with pytest.raises(WrongKindError, match="is a uart device, not spi") as e:
        sim_runtime.get(Spi, same70.UART0)
    assert e.value.code == "wrong_device_kind"


def test_device_not_found_lists_valid_ids(sim_runtime: Runtime, same70: type) -> None:
    from actorhw.drivers.definitions import BoardCatalog

    # a board file that has I2C2 ... but a running board that lacks it
    catalog = BoardCatalog.discover()
    other = catalog.get("stm32f4-discovery").ids("stm32f4-discovery")
    with pytest.raises(NoSuchDeviceError, match="not running") as e:
        sim_runtime.get(I2c, other.I2C1)
    assert e.value.code == "no_such_device"
    with pytest.raises(NoSuchDeviceError) as e2:
        sim_runtime.get("UART0")  # type: ignore[call-overload]
    assert "not a device id" in str(e2.value)


def test_unknown_id_of_running_board_lists_its_ids(sim_runtime: Runtime) -> None:
    from actorhw.core.ids import make_id_enum

    # an enum that claims to be same70's but holds an id the board does not have
    fake = make_id_enum("Same70", "same70-xplained", ["I2C9"])
    with pytest.raises(NoSuchDeviceError) as e:
        sim_runtime.get(I2c, fake.I2C9)
    assert "UART0" in e.value.valid_ids and "I2C2" in e.value.valid_ids
    assert "valid ids: ADC0, DAC0" in str(e.value)


def test_ids_of_two_boards_never_compare_equal(sim_runtime: Runtime) -> None:
    same70 = sim_runtime.ids("same70-xplained")
    from actorhw.drivers.definitions import BoardCatalog

    stm = BoardCatalog.discover().get("stm32f4-discovery").ids()
    assert same70.LED_GREEN != stm.LED_GREEN
    assert same70.LED_GREEN.name == stm.LED_GREEN.name
    assert {same70.LED_GREEN: 1}.get(stm.LED_GREEN) is None


def test_registry_listing_shows_id_kind_state_owners(sim_runtime: Runtime, same70: type) -> None:
    with sim_runtime.lease(Uart, same70.UART0, owner="module-a"):
        listing = {i.device: i for i in sim_runtime.devices("same70-xplained")}
    # the listing taken while held shows the owner
    uart = listing[same70.UART0]
    assert (uart.kind.value, uart.state, uart.owners, uart.owners_count) == (
        "uart",
        DeviceState.ACTIVE,
        ("module-a",),
        1,
    )
    assert listing[same70.SPI0].owners_count == 0


def test_release_by_non_owner_is_refused(sim_runtime: Runtime, same70: type) -> None:
    lease = sim_runtime.acquire(same70.SPI0, owner="module-a")
    forged = attrs.evolve(lease, owner="module-b")
    with pytest.raises(NotOwnerError):
        sim_runtime.release(forged)
    assert sim_runtime.info(same70.SPI0).owners == ("module-a",)
    sim_runtime.release(lease)


def test_stale_lease_is_refused(sim_runtime: Runtime, same70: type) -> None:
    lease = sim_runtime.acquire(same70.SPI1, owner="module-a")
    sim_runtime.release(lease)
    with pytest.raises(StaleLeaseError) as e:
        sim_runtime.release(lease)
    assert e.value.code == "stale_lease"
    fresh = sim_runtime.acquire(same70.SPI1, owner="module-b")
    with pytest.raises(StaleLeaseError):
        sim_runtime.open(lease)
    assert sim_runtime.info(same70.SPI1).owners == ("module-b",)
    sim_runtime.release(fresh)


def test_last_release_resets_device_for_reuse(sim_runtime: Runtime, same70: type) -> None:
    with sim_runtime.lease(Uart, same70.UART0, owner="a") as uart:
        uart.write(b"left over")
    with sim_runtime.lease(Uart, same70.UART0, owner="b") as uart:
        assert uart.read(100) == b""


def test_lease_context_releases_on_exception(sim_runtime: Runtime, same70: type) -> None:
    with pytest.raises(RuntimeError), sim_runtime.lease(Uart, same70.UART0, owner="a"):
        raise RuntimeError("boom")
    info = sim_runtime.info(same70.UART0)
    assert (info.owners_count, info.open_count, info.state) == (0, 0, DeviceState.CONNECTED)


def test_release_of_open_lease_closes_it(sim_runtime: Runtime, same70: type) -> None:
    lease = sim_runtime.acquire(same70.UART0, owner="a")
    sim_runtime.open(lease)
    assert sim_runtime.info(same70.UART0).state is DeviceState.ACTIVE
    assert sim_runtime.release(lease) == 0
    assert sim_runtime.info(same70.UART0).state is DeviceState.CONNECTED


def test_wrong_argument_types_are_refused_without_effect(
    sim_runtime: Runtime, same70: type
) -> None:
    from actorhw.core.errors import InvalidArgumentError

    with sim_runtime.lease(Uart, same70.UART0, owner="a") as uart:
        with pytest.raises(InvalidArgumentError):
            uart.write("text, not bytes")  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError):
            sim_runtime.use(uart.lease, "write", ("text",))  # type: ignore[arg-type]
        assert uart.read(10) == b""
    with pytest.raises(InvalidArgumentError):
        sim_runtime.release("not a lease")  # type: ignore[arg-type]


def test_unknown_operation_lists_valid_ones(sim_runtime: Runtime, same70: type) -> None:
    from actorhw.core.errors import UnsupportedOperationError

    with sim_runtime.lease(Uart, same70.UART0, owner="a") as uart:
        assert uart.lease is not None
        with pytest.raises(UnsupportedOperationError, match="valid: read, write"):
            sim_runtime.use(uart.lease, "transfer", (b"x",))


def test_lease_is_plain_data(sim_runtime: Runtime, same70: type) -> None:
    lease = sim_runtime.acquire(same70.UART0, owner="a")
    assert isinstance(lease, Lease) and lease.owner == "a" and lease.generation == 0
    sim_runtime.release(lease)
