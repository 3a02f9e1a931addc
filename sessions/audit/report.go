package audit

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"
)

// RequestKnow is the report row adding up know_categories and know_specific: §7102 counts
// requests to know as one type.
const RequestKnow = "know"

// reportRows is the order of the report's rows.
var reportRows = []string{RequestKnow, RequestKnowCategories, RequestKnowSpecific, RequestDelete,
	RequestCorrect, RequestOptOut, RequestLimit}

// CCPAReport holds the §7102 metrics for one calendar year.
type CCPAReport struct {
	// Year is the calendar year; a record belongs to it by its received time in TimeZone.
	Year     int    `json:"year"`
	TimeZone string `json:"time_zone"`
	// Requests has one row per request type, in the order know (the sum of the next two),
	// know_categories, know_specific, delete, correct, opt_out, limit.
	Requests []RequestStats `json:"requests"`
	// OtherRecords counts the year's records that are no CCPA request (account_service, or a
	// caller who left before choosing).
	OtherRecords int `json:"other_records"`
	// Duplicates counts records whose id appeared earlier in the file; only the first counts.
	Duplicates int `json:"duplicates"`
}

// RequestStats are one request type's figures. Received = CompliedWhole + CompliedPart +
// Denied + NoResponse.
type RequestStats struct {
	Request  string `json:"request"`
	Received int    `json:"received"`
	// CompliedWhole: verified, or opt-out/limit confirmed.
	CompliedWhole int `json:"complied_in_whole"`
	// CompliedPart: partially_verified, i.e. a know_specific request answered as
	// know_categories (§7024(a)).
	CompliedPart int `json:"complied_in_part"`
	// Denied in whole, and by basis.
	Denied   int     `json:"denied"`
	DeniedBy Denials `json:"denied_by_basis"`
	// NoResponse counts callers who hung up before any response; they are in Received but
	// neither complied with nor denied, and not in the days figures.
	NoResponse int `json:"no_response"`
	// Responded counts the records the days figures are computed over: every complied with
	// or denied request.
	Responded int `json:"responded"`
	// MedianDays and MeanDays are the median and mean of (responded − received) in days of
	// 86,400 seconds, fractions kept, rounded to 4 decimal places (about 9 s); null when no
	// request of the type was responded to. The median of an even count is the mean of the
	// two middle values.
	MedianDays *float64 `json:"median_days"`
	MeanDays   *float64 `json:"mean_days"`

	days []float64
}

// Denials counts denials in whole by §7102 basis.
type Denials struct {
	NotVerifiable     int `json:"not_verifiable"`
	NotMadeByConsumer int `json:"not_made_by_consumer"`
	Exempt            int `json:"exempt"`
	Other             int `json:"other"`
}

func (d *Denials) add(basis string) {
	switch basis {
	case BasisNotVerifiable:
		d.NotVerifiable++
	case BasisNotMadeByConsumer:
		d.NotMadeByConsumer++
	case BasisExempt:
		d.Exempt++
	default:
		d.Other++
	}
}

// Report verifies an audit file (as Verify does; a bad chain is an error, not a report) and
// computes the §7102 metrics of the records received in year, by UTC calendar. Use
// ReportIn for another time zone (America/Los_Angeles for California's calendar).
func Report(r io.Reader, year int) (*CCPAReport, error) { return ReportIn(r, year, time.UTC) }

// ReportIn is Report with the calendar year taken in loc.
func ReportIn(r io.Reader, year int, loc *time.Location) (*CCPAReport, error) {
	if year < 1970 || year > 9999 {
		return nil, fmt.Errorf("%w: report year %d", ErrInvalidConfig, year)
	}
	if loc == nil {
		loc = time.UTC
	}
	from := time.Date(year, time.January, 1, 0, 0, 0, 0, loc)
	to := time.Date(year+1, time.January, 1, 0, 0, 0, 0, loc)
	rep := &CCPAReport{Year: year, TimeZone: loc.String()}
	rows := make(map[string]*RequestStats, len(reportRows))
	for _, name := range reportRows {
		rows[name] = &RequestStats{Request: name}
	}
	seen := map[string]struct{}{}
	v := newVerifier()
	err := v.scan(r, func(li lineInfo) error {
		rec := li.rec
		if rec == nil {
			return nil
		}
		if _, dup := seen[rec.ID]; dup {
			rep.Duplicates++
			return nil
		}
		seen[rec.ID] = struct{}{}
		if rec.Received.Before(from) || !rec.Received.Before(to) {
			return nil
		}
		row, ok := rows[rec.Request]
		if !ok || rec.Request == RequestKnow {
			rep.OtherRecords++
			return nil
		}
		tally(row, rec)
		if rec.Request == RequestKnowCategories || rec.Request == RequestKnowSpecific {
			tally(rows[RequestKnow], rec)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, name := range reportRows {
		row := rows[name]
		row.finish()
		rep.Requests = append(rep.Requests, *row)
	}
	return rep, nil
}

func tally(row *RequestStats, rec *Record) {
	row.Received++
	basis := rec.DenialBasis
	if basis == "" {
		basis = DenialBasis(rec.Outcome, "")
	}
	switch Disposition(rec.Outcome, rec.DenialBasis) {
	case DispositionNoResponse:
		row.NoResponse++
		return
	case DispositionComplied:
		row.CompliedWhole++
	case DispositionCompliedPart:
		row.CompliedPart++
	case DispositionDenied:
		row.Denied++
		row.DeniedBy.add(basis)
	}
	row.Responded++
	row.days = append(row.days, rec.Responded.Sub(rec.Received).Seconds()/86400)
}

func (row *RequestStats) finish() {
	if len(row.days) == 0 {
		return
	}
	d := slices.Clone(row.days)
	slices.Sort(d)
	var median float64
	if n := len(d); n%2 == 1 {
		median = d[n/2]
	} else {
		median = (d[n/2-1] + d[n/2]) / 2
	}
	var sum float64
	for _, x := range d {
		sum += x
	}
	med, mean := round4(median), round4(sum/float64(len(d)))
	row.MedianDays, row.MeanDays = &med, &mean
}

func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }

// Table writes the report as aligned text for people; JSON marshalling gives the same
// figures for machines.
func (rep *CCPAReport) Table(w io.Writer) error {
	if _, err := fmt.Fprintf(w, "CCPA §7102 metrics, calendar year %d (%s)\n\n", rep.Year, rep.TimeZone); err != nil {
		return err
	}
	width := len("request")
	for _, r := range rep.Requests {
		width = max(width, len(r.Request))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\treceived\tcomplied\tin part\tdenied\tnot verifiable\tnot by consumer\texempt\tother\tno response\tmedian days\tmean days\t\n", width, "request")
	for _, r := range rep.Requests {
		fmt.Fprintf(tw, "%-*s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t\n", width, r.Request, r.Received,
			r.CompliedWhole, r.CompliedPart, r.Denied, r.DeniedBy.NotVerifiable, r.DeniedBy.NotMadeByConsumer,
			r.DeniedBy.Exempt, r.DeniedBy.Other, r.NoResponse, days(r.MedianDays), days(r.MeanDays))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\nknow = know_categories + know_specific. Denied columns count denials in whole by §7102 basis;\n"+
		"in part = know_specific answered as know_categories (§7024(a)). Days are (responded - received) / 86400 s.\n"+
		"Other records (not a CCPA request): %d. Duplicate ids ignored: %d.\n", rep.OtherRecords, rep.Duplicates)
	return err
}

func days(p *float64) string {
	if p == nil {
		return "-"
	}
	return strconv.FormatFloat(*p, 'f', 4, 64)
}
