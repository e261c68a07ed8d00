//! IOB, COB, basal, bolus wizard preview and AR2 (src/plugins/) over HTTP, from a realistic
//! day posted as uploaders post it: a day of readings, a profile, Meal Bolus, Correction
//! Bolus and Carb Correction from the careportal/xDrip+, tconnectsync's Temp Basals. Expected
//! values are worked out from Nightscout's formulas (lib/plugins/*.js) below; the tolerance
//! is the display rounding, for the milliseconds between posting and asking.

use serde_json::{json, Value};

use crate::support::{iso, now_ms, sgv, TestServer};

const MIN: i64 = 60_000;

fn seed(s: &TestServer, now: i64) {
    seed_in(s, now, false);
}

/// The day, with the profile in mmol/l (ISF 2.2 mmol/l per U, targets 5.5-6.7) when `mmol`.
fn seed_in(s: &TestServer, now: i64, mmol: bool) {
    // A day of readings every 5 minutes, ending 150 (6 min ago) and 160 (1 min ago).
    let mut readings: Vec<Value> = (2..288)
        .map(|i| {
            let v = 120.0 + 30.0 * ((i as f64) / 20.0).sin();
            sgv("xDrip-DexcomG6", now - MIN - i * 5 * MIN, v.round() as i64)
        })
        .collect();
    readings.push(sgv("xDrip-DexcomG6", now - 6 * MIN, 150));
    readings.push(sgv("xDrip-DexcomG6", now - MIN, 160));
    s.post_ok("/api/v1/entries", &Value::Array(readings));
    let flat = |v: f64| json!([{ "time": "00:00", "value": v, "timeAsSeconds": 0 }]);
    let (units, sens, low, high) = if mmol {
        ("mmol", 2.2, 5.5, 6.7)
    } else {
        ("mg/dl", 40.0, 100.0, 120.0)
    };
    s.post_ok(
        "/api/v1/profile",
        &json!({
            "defaultProfile": "Default",
            "startDate": iso(now - 30 * 24 * 60 * MIN),
            "mills": 0,
            "units": units,
            "store": { "Default": {
                "dia": 4, "carbs_hr": 30, "delay": 20, "timezone": "Europe/Berlin",
                "units": units, "carbratio": flat(10.0), "sens": flat(sens),
                "basal": flat(0.9), "target_low": flat(low), "target_high": flat(high)
            }, "Night": {
                "dia": 3, "carbs_hr": 30, "timezone": "Europe/Berlin", "units": "mg/dl",
                "carbratio": flat(12.0), "sens": flat(60.0), "basal": flat(0.5),
                "target_low": flat(100.0), "target_high": flat(120.0)
            }}
        }),
    );
    let at = |mins: i64| iso(now - mins * MIN);
    s.post_ok(
        "/api/v1/treatments",
        &json!([
            { "eventType": "Meal Bolus", "created_at": at(120), "insulin": 4.5, "carbs": 45,
              "enteredBy": "xdrip" },
            { "eventType": "Temp Basal", "created_at": at(60), "duration": 30.0,
              "absolute": 0.5, "rate": 0.5, "carbs": null, "insulin": null,
              "enteredBy": "Pump (tconnectsync)" },
            { "eventType": "Correction Bolus", "created_at": at(40), "insulin": 1.5,
              "enteredBy": "careportal" },
            { "eventType": "Carb Correction", "created_at": at(20), "carbs": 15,
              "enteredBy": "careportal" },
            { "eventType": "Temp Basal", "created_at": at(10), "duration": 30.0,
              "absolute": 1.5, "rate": 1.5, "carbs": null, "insulin": null,
              "enteredBy": "Pump (tconnectsync)" }
        ]),
    );
}

fn get(s: &TestServer, path: &str) -> Value {
    let r = s.get_auth(path);
    assert_eq!(r.status, 200, "{path}: {}", r.text);
    r.json()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

#[test]
fn a_day_of_treatments_gives_nightscouts_numbers() {
    let s = TestServer::start();
    let now = now_ms();
    seed(&s, now);
    let p = get(&s, "/api/v2/properties");

    // IOB (dia 4: minutes scaled by 3/4). Meal 4.5 U 120 min ago: 90 scaled, x2 = 3,
    // 4.5·(0.001323·9 - 0.054233·3 + 0.55556) = 1.821456. Correction 1.5 U 40 min ago:
    // 30 scaled, x1 = 7, 1.5·(1 - 0.001852·49 + 0.001852·7) = 1.383324. Total 3.20478; temp
    // basals add nothing.
    let iob = &p["iob"];
    assert_eq!(iob["source"], json!("Care Portal"), "{iob}");
    assert!((f(&iob["iob"]) - 3.20478).abs() < 0.005, "{iob}");
    // Two decimals of the rounded IOB (3.205 shows "3.21", 3.204 "3.20").
    let shown = format!("{:.2}", f(&iob["iob"]));
    assert_eq!(iob["display"], json!(shown));
    assert_eq!(iob["lastBolus"]["eventType"], json!("Correction Bolus"));
    // Shown whole, as stored (the math itself reads only a few fields).
    assert_eq!(iob["lastBolus"]["enteredBy"], json!("careportal"));

    // COB (carbs_hr 30, sens 40, carbratio 10). Meal 45 g: decays by 120 - 20 - 90 = 10 min
    // ago; activity then 1.542857 (meal 1.392857 + correction 0.15), at the start 0: delay
    // round((0.771429·8/40·10)/30·60) = 3 min, so 7 min ago: nothing left. Snack 15 g 20 min
    // ago queues behind it (13 min left < 20): 20 + 15/0.5 = 50 min → 30 min from now;
    // activity 1.525714 → 1.314286 gives 6 min more: 36 min, min(15, 0.6·30) = 15.
    let cob = &p["cob"];
    assert_eq!(cob["source"], json!("Care Portal"), "{cob}");
    assert_eq!(cob["cob"], json!(15));
    assert_eq!(cob["display"], json!(15));
    assert_eq!(cob["displayLine"], json!("COB: 15g"));
    assert_eq!(cob["lastCarbs"]["carbs"], json!(15));
    assert_eq!(cob["isDecaying"], json!(1));

    // Basal: the 1.5 U/h temp started 10 min ago for 30.
    assert_eq!(p["basal"]["display"], json!("T: 1.500U"), "{}", p["basal"]);
    assert_eq!(p["basal"]["current"]["basal"], json!(0.9));
    let temp = p["basal"]["current"]["treatment"].as_object().cloned();
    let keys: Vec<String> = temp
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default();
    assert_eq!(keys.first().map(String::as_str), Some("_id"), "{keys:?}");
    assert_eq!(
        keys.last().map(String::as_str),
        Some("endmills"),
        "{keys:?}"
    );
    assert!(
        keys.iter().any(|k| k == "enteredBy" || k == "rate"),
        "{keys:?}"
    );

    // BWP: 160 - iob·40 = 31.8 < 100: -(100 - 31.8)/40 ≈ -1.705 U, from the IOB shown.
    let bwp = &p["bwp"];
    let expected = -((100.0 - (160.0 - f(&iob["iob"]) * 40.0)).abs() / 40.0);
    assert!((f(&bwp["bolusEstimate"]) - expected).abs() < 1e-9, "{bwp}");
    assert_eq!(bwp["aimTargetString"], json!("below low"));
    assert_eq!(bwp["scaledSGV"], json!(160));
    assert_eq!(bwp["recentCarbs"]["carbs"], json!(15));
    assert!(bwp["bolusEstimateDisplay"]
        .as_str()
        .is_some_and(|d| d.starts_with("-1.7")));

    // AR2 from 150 → 160: 167, 173, 177, 179, 181, 181; loss 0.0336 (no alarm).
    let predicted: Vec<i64> = p["ar2"]["forecast"]["predicted"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["mgdl"].as_i64()).collect())
        .unwrap_or_default();
    assert_eq!(predicted, vec![167, 173, 177, 179, 181, 181]);
    assert!(p["ar2"].get("level").is_none());
    assert_eq!(p["ar2"]["displayLine"], json!("BG 15m: 177 mg/dl"));

    // Nightscout's plugin order.
    let keys: Vec<&str> = p
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let pos = |k: &str| keys.iter().position(|x| *x == k).unwrap_or(usize::MAX);
    assert!(pos("upbat") < pos("ar2") && pos("ar2") < pos("iob"));
    assert!(pos("loop") < pos("bwp") && pos("bwp") < pos("cage"));
    assert!(pos("bage") < pos("basal") && pos("basal") < pos("dbsize"));

    // /pebble: iob, cob and the wizard's estimate and outcome on the first reading.
    let pebble = get(&s, "/pebble");
    let first = &pebble["bgs"][0];
    assert!(
        first["iob"] == json!("3.20") || first["iob"] == json!("3.21"),
        "{first}"
    );
    assert_eq!(first["cob"], json!(15));
    assert_eq!(first["bwp"], bwp["bolusEstimateDisplay"]);
    assert_eq!(first["bwpo"], json!(32));

    // A loop's IOB takes precedence; the treatments' is shown beside it.
    let at = iso(now - MIN);
    s.post_ok(
        "/api/v1/devicestatus",
        &json!({ "device": "loop://iPhone", "created_at": at,
                 "loop": { "timestamp": at, "iob": { "iob": 2.5, "timestamp": at } } }),
    );
    let iob = get(&s, "/api/v2/properties/iob")["iob"].clone();
    assert_eq!(iob["source"], json!("Loop"), "{iob}");
    assert_eq!(iob["iob"], json!(2.5));
    assert!((f(&iob["treatmentIob"]) - 3.20478).abs() < 0.005, "{iob}");
    assert_eq!(iob["display"], json!("2.50"));
}

/// Profile Switches change the treatment math as Nightscout's getValueByTime does: the switched
/// profile at each moment, the percentage on basal, ISF and carb ratio, and a temporary switch
/// that has ended giving way to the one before it.
#[test]
fn profile_switches_change_basal_iob_and_bwp() {
    let s = TestServer::start();
    let now = now_ms();
    seed(&s, now);
    let at = |mins: i64| iso(now - mins * MIN);
    // A permanent switch to 200 % (as Nightscout's careportal sends it, which Nightscout scales).
    s.post_ok(
        "/api/v1/treatments",
        &json!({ "eventType": "Profile Switch", "created_at": at(300), "profile": "Default",
                 "percentage": 200, "timeshift": 0, "duration": 0,
                 "CircadianPercentageProfile": true, "enteredBy": "careportal" }),
    );
    // BWP below the 100 target with the IOB shown and ISF `sens`.
    let bwp_is = |p: &Value, sens: f64| {
        let iob = f(&p["iob"]["iob"]);
        let expected = -((100.0 - (160.0 - iob * sens)).abs() / sens);
        let got = f(&p["bwp"]["bolusEstimate"]);
        assert!((got - expected).abs() < 1e-9, "{}", p["bwp"]);
    };
    let p = get(&s, "/api/v2/properties");
    // Basal 0.9 × 2; the temp basal still sets the rate.
    assert_eq!(p["basal"]["current"]["basal"], json!(1.8), "{}", p["basal"]);
    assert_eq!(p["basal"]["display"], json!("T: 1.500U"));
    // IOB's amount is dia's (unchanged: 3.20478); its activity uses ISF 40 × 100/200 = 20.
    let iob = f(&p["iob"]["iob"]);
    assert!((iob - 3.20478).abs() < 0.005, "{}", p["iob"]);
    // BWP with ISF 20: 160 - iob·20 ≈ 95.9 < 100: -(100 - 95.9)/20 ≈ -0.2 U.
    bwp_is(&p, 20.0);

    // A temporary switch to Night that ended 70 minutes ago changes nothing now.
    s.post_ok(
        "/api/v1/treatments",
        &json!({ "eventType": "Profile Switch", "created_at": at(100), "profile": "Night",
                 "duration": 30, "enteredBy": "careportal" }),
    );
    let p = get(&s, "/api/v2/properties");
    assert_eq!(p["basal"]["current"]["basal"], json!(1.8), "{}", p["basal"]);

    // One running now: Night's dia 3, basal 0.5, ISF 60. IOB with dia 3: the meal (120 min)
    // 4.5·(0.001323·81 - 0.054233·9 + 0.55556) = 0.785817, the correction (40 min)
    // 1.5·(1 - 0.001852·81 + 0.001852·9) = 1.299984: 2.085801.
    s.post_ok(
        "/api/v1/treatments",
        &json!({ "eventType": "Profile Switch", "created_at": at(30), "profile": "Night",
                 "duration": 60, "enteredBy": "careportal" }),
    );
    let p = get(&s, "/api/v2/properties");
    assert_eq!(p["basal"]["current"]["basal"], json!(0.5), "{}", p["basal"]);
    let iob = f(&p["iob"]["iob"]);
    assert!((iob - 2.085801).abs() < 0.005, "{}", p["iob"]);
    bwp_is(&p, 60.0);
    // /pebble reads the same profile.
    let first = &get(&s, "/pebble")["bgs"][0];
    assert_eq!(first["bwp"], p["bwp"]["bolusEstimateDisplay"], "{first}");
}

#[test]
fn without_profile_or_treatments_nothing_is_invented() {
    let s = TestServer::start();
    let now = now_ms();
    s.post_ok(
        "/api/v1/entries",
        &json!([sgv("x", now - 6 * MIN, 100), sgv("x", now - MIN, 100)]),
    );
    let p = get(&s, "/api/v2/properties");
    assert_eq!(p["iob"], json!({}));
    assert_eq!(p["cob"], json!({}));
    assert!(p.get("basal").is_none());
    assert_eq!(
        p["bwp"]["errors"],
        json!(["Missing need a treatment profile"])
    );
    assert_eq!(p["ar2"]["forecast"]["predicted"][0]["mgdl"], json!(100));
}

/// AR2_CONE_FACTOR reaches clients as Nightscout's status sends it
/// (`extendedSettings.ar2.coneFactor`, env.js's number), only with ar2 enabled; the viewer
/// draws its cone with it (tests/browser).
#[test]
fn the_cone_factor_is_in_the_status_extended_settings() {
    let status = |vars: &[(&str, &str)]| {
        let s = TestServer::with(vars);
        get(&s, "/api/v1/status.json")["extendedSettings"].clone()
    };
    let on = status(&[("ENABLE", "ar2"), ("AR2_CONE_FACTOR", "1.5")]);
    assert_eq!(on["ar2"], json!({ "coneFactor": 1.5 }), "{on}");
    assert_eq!(on["devicestatus"], json!({ "advanced": true, "days": 1 }));
    // ALARM_TYPES=predict enables ar2 as well.
    let predict = status(&[("ALARM_TYPES", "predict"), ("AR2_CONE_FACTOR", "0")]);
    assert_eq!(predict["ar2"], json!({ "coneFactor": 0 }), "{predict}");
    // Not enabled, or not set: no ar2 settings (the client's default is 2).
    assert!(status(&[("AR2_CONE_FACTOR", "3")]).get("ar2").is_none());
    assert!(status(&[("ENABLE", "ar2")]).get("ar2").is_none());
}

/// COB's absorption delay asks iob.calcTotal for the insulin activity at past moments, and
/// there a device status within 30 minutes answers instead of the treatments, as Nightscout's
/// day of device statuses (its data loader and cache hold one day) answers. A Loop status 8
/// hours ago reports IOB without `activity`: NaN, so no delay for the carbs computed at that
/// moment. Without it the 10 U bolus' activity delays them.
#[test]
fn cob_reads_device_statuses_of_the_last_day() {
    let cob_of = |with_status: bool| {
        let s = TestServer::start();
        let now = now_ms();
        let at = |mins: i64| iso(now - mins * MIN);
        let flat = |v: f64| json!([{ "time": "00:00", "value": v }]);
        s.post_ok(
            "/api/v1/profile",
            &json!({ "defaultProfile": "Default", "startDate": iso(now - 30 * 24 * 60 * MIN),
                     "store": { "Default": { "dia": 4, "carbs_hr": 30, "timezone": "UTC",
                       "units": "mg/dl", "carbratio": flat(10.0), "sens": flat(40.0),
                       "basal": flat(0.9), "target_low": flat(100.0), "target_high": flat(120.0) } } }),
        );
        s.post_ok(
            "/api/v1/treatments",
            &json!([
                { "eventType": "Carb Correction", "created_at": at(540), "carbs": 20 },
                { "eventType": "Correction Bolus", "created_at": at(510), "insulin": 10 },
                { "eventType": "Carb Correction", "created_at": at(60), "carbs": 30 }
            ]),
        );
        if with_status {
            s.post_ok(
                "/api/v1/devicestatus",
                &json!({ "device": "loop://iPhone", "created_at": at(480),
                         "loop": { "timestamp": at(480), "iob": { "iob": 1.0, "timestamp": at(480) } } }),
            );
        }
        s.post_ok("/api/v1/entries", &json!([sgv("x", now - MIN, 100)]));
        let cob = get(&s, "/api/v2/properties/cob")["cob"].clone();
        assert_eq!(cob["source"], json!("Care Portal"), "{cob}");
        // /pebble reads the same day of statuses.
        let pebble = get(&s, "/pebble?count=1")["bgs"][0]["cob"].clone();
        assert_eq!(pebble, cob["display"], "{cob}");
        f(&cob["cob"])
    };
    // The snack 60 minutes ago: 20 minutes' delay plus 30 g at 0.5 g/min decays 20 minutes
    // from now, 10 g on board, with no extra delay when the activity 8 hours ago is NaN.
    let with_status = cob_of(true);
    assert!((with_status - 10.0).abs() < 0.1, "{with_status}");
    // From the treatments the bolus' activity adds minutes: more on board.
    let without = cob_of(false);
    assert!(without > with_status + 0.4, "{without} vs {with_status}");
}

/// An mmol site (DISPLAY_UNITS=mmol, the profile in mmol/l): the same IOB and basal; BWP
/// from the reading scaled as Nightscout scales it (mgdlToMMOL, one decimal) and the ISF in
/// mmol/l per U, its outcome and effect rounded to one decimal; AR2's line in mmol/L.
#[test]
fn an_mmol_site_gets_the_numbers_converted_and_rounded() {
    let s = TestServer::with(&[("DISPLAY_UNITS", "mmol")]);
    let now = now_ms();
    seed_in(&s, now, true);
    let p = get(&s, "/api/v2/properties");
    // IOB counts units of insulin: as on the mg/dl site (3.20478).
    let iob = f(&p["iob"]["iob"]);
    assert!((iob - 3.20478).abs() < 0.005, "{}", p["iob"]);
    assert_eq!(p["basal"]["display"], json!("T: 1.500U"));
    // 160 mg/dl is 8.8811 mmol/l, "8.9"; effect iob·2.2 ≈ 7.05; outcome 8.9 - 7.05 ≈ 1.85 <
    // 5.5: -(5.5 - 1.85)/2.2 ≈ -1.66 U.
    let bwp = &p["bwp"];
    assert_eq!(bwp["scaledSGV"], json!(8.9), "{bwp}");
    let effect = iob * 2.2;
    let outcome = 8.9 - effect;
    assert!((f(&bwp["effect"]) - effect).abs() < 1e-9, "{bwp}");
    assert!((f(&bwp["outcome"]) - outcome).abs() < 1e-9, "{bwp}");
    let expected = -((5.5 - outcome).abs() / 2.2);
    assert!((f(&bwp["bolusEstimate"]) - expected).abs() < 1e-9, "{bwp}");
    // roundBGToDisplayFormat: one decimal in mmol.
    let tenth = |x: f64| (x * 10.0).round() / 10.0;
    assert_eq!(f(&bwp["outcomeDisplay"]), tenth(outcome), "{bwp}");
    assert_eq!(f(&bwp["effectDisplay"]), tenth(effect), "{bwp}");
    assert_eq!(bwp["aimTarget"], json!(5.5));
    // AR2 forecasts in mg/dl (150 → 160: 167, 173, 177, ...); the line shows 177 as 9.8.
    assert_eq!(p["ar2"]["forecast"]["predicted"][2]["mgdl"], json!(177));
    assert_eq!(p["ar2"]["displayLine"], json!("BG 15m: 9.8 mmol/L"));
    // /pebble in mmol: the wizard's outcome as shown (IOB decays between the two requests:
    // a tenth of outcome, a hundredth of the estimate apart at most).
    let first = &get(&s, "/pebble")["bgs"][0];
    let num = |v: &Value| v.as_str().and_then(|t| t.parse().ok()).unwrap_or(f64::NAN);
    assert!(
        (f(&first["bwpo"]) - f(&bwp["outcomeDisplay"])).abs() < 0.11,
        "{first}"
    );
    // One decimal, as roundBGToDisplayFormat gives in mmol.
    let tenths = f(&first["bwpo"]) * 10.0;
    assert!((tenths - tenths.round()).abs() < 1e-9, "{first}");
    assert!(
        (num(&first["bwp"]) - num(&bwp["bolusEstimateDisplay"])).abs() < 0.011,
        "{first}"
    );
}
